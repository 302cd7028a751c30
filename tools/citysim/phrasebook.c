/* phrasebook — the tables of what people say; see phrasebook.h. */
#include "phrasebook.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_PLACES 12

/* Where a problem is: at a crossing, on a road, at a landmark, in a
 * residential compound. */
enum place { AT_CROSSING, ON_ROAD, AT_LANDMARK, IN_COMPOUND };

/* A problem, where it happens and what the department writes when it is
 * handled. */
static const struct problem {
    const char *category;
    enum place place;
    const char *text, *handled;
} problems[] = {
    {"01001", AT_CROSSING, "上水井盖缺失，行人易跌落", "已补装上水井盖，现场恢复安全"},
    {"01002", ON_ROAD, "污水井盖破损下陷，车辆经过咣当作响", "已更换污水井盖，车辆通行正常"},
    {"01003", AT_CROSSING, "雨水井盖移位，有车辆轧翻的危险", "已将井盖复位并加装防移位装置"},
    {"01004", ON_ROAD, "雨水箅子被树叶垃圾堵塞，下雨排水不畅", "已清掏雨水箅子，排水恢复通畅"},
    {"01009", AT_LANDMARK, "消防栓被车撞坏，一直在漏水", "已关闭阀门并更换损坏的消防栓"},
    {"01010", ON_ROAD, "附近路灯连续几盏不亮，晚上出行不便", "已更换故障灯具，路灯恢复照明"},
    {"01013", ON_ROAD, "路面坑洼破损严重，电动车容易摔倒", "已对破损路面进行修补"},
    {"02001", AT_CROSSING, "红绿灯不亮，路口通行混乱", "已抢修信号灯，路口通行恢复正常"},
    {"02002", ON_ROAD, "交通护栏被撞倒，占用机动车道", "已扶正并加固交通护栏"},
    {"02005", AT_LANDMARK, "公交站亭顶棚破损，雨天无法避雨", "已修复站亭顶棚"},
    {"03001", AT_LANDMARK, "垃圾桶破损，垃圾散落一地", "已更换新垃圾桶，清理散落垃圾"},
    {"03002", AT_LANDMARK, "公厕无人保洁，异味较大", "已安排专人保洁，公厕恢复整洁"},
    {"04001", ON_ROAD, "行道树枝干断裂悬挂，存在砸人隐患", "已修剪清除断裂枝干，消除隐患"},
    {"04002", IN_COMPOUND, "门前绿地被毁种菜，黄土裸露", "已清除违规种植并补植绿化"},
    {"05002", IN_COMPOUND, "健身器材损坏，存在安全隐患", "已拆除损坏器材，联系厂家更换"},
    {"06002", ON_ROAD, "路边堆放生活垃圾，无人清理", "已组织人员清运，现场恢复整洁"},
    {"06003", AT_LANDMARK, "垃圾满溢无人清运，气味难闻", "已清运满溢垃圾，增加清运频次"},
    {"06005", ON_ROAD, "路面油污泥土较多，无人清扫", "已安排清扫冲洗路面"},
    {"06006", IN_COMPOUND, "有人焚烧树叶垃圾，烟雾很大", "已制止焚烧行为并清理现场"},
    {"07001", IN_COMPOUND, "楼道和单元门上贴满小广告", "已清除小广告并加强巡查"},
    {"07004", ON_ROAD, "商铺广告牌匾松动，大风天有坠落危险", "已责令商户拆除加固广告牌匾"},
    {"08001", ON_ROAD, "工地裸土未覆盖，扬尘严重", "已责令施工单位覆盖裸土并洒水降尘"},
    {"08002", AT_CROSSING, "施工围挡占用车道，早晚高峰拥堵", "已督促施工单位缩小围挡，恢复车道"},
    {"08004", ON_ROAD, "渣土车沿路遗撒，路面泥泞", "已清理遗撒并处罚运输单位"},
    {"08005", IN_COMPOUND, "附近工地夜间施工，噪音大影响休息", "已约谈施工单位，夜间停止施工"},
    {"09001", ON_ROAD, "多家商铺店外经营，人行道无法通行", "已劝导商户退店经营，人行道恢复通行"},
    {"09002", ON_ROAD, "占道经营，影响通行", "已劝离占道商户，恢复通行"},
    {"09004", AT_LANDMARK, "机动车乱停放，堵塞消防通道", "已对违停车辆贴单并拖移"},
    {"09005", AT_LANDMARK, "共享单车乱停乱放，堵塞人行道", "已通知运营企业清理调度共享单车"},
    {"09006", ON_ROAD, "夜市露天烧烤，油烟扰民", "已取缔露天烧烤并教育摊主"},
    {"09007", IN_COMPOUND, "广场舞音响声音过大，影响居民休息", "已与广场舞组织者沟通，调低音量并限定时间"},
    {"10001", AT_CROSSING, "道路积水严重，车辆无法通行", "已组织抽排积水，道路恢复通行"},
    {"10003", ON_ROAD, "路边有动物尸体，无人处理", "已无害化处理"},
};

/* Each district's roads and landmarks (NULL-terminated); other cities get
 * the fallback. */
static const struct places {
    const char *district;
    const char *roads[MAX_PLACES], *landmarks[MAX_PLACES];
} districts[] = {
    {"410802", /* 解放区 */
     {"解放路", "民主路", "人民路", "塔南路", "塔北路", "建设路", "和平街", "新华街", "站前路", "政二街", "胜利街"},
     {"人民公园", "焦作站", "焦作市第一中学", "百货大楼", "解放区政府", "民主路菜市场"}},
    {"410811", /* 山阳区 */
     {"山阳路", "丰收路", "塔南路", "人民路", "焦东路", "太行路", "中原路", "迎宾路", "世纪路"},
     {"龙源湖公园", "焦作市体育中心", "万达广场", "河南理工大学", "焦作市人民医院", "山阳区政府"}},
    {"410803", /* 中站区 */
     {"焦克路", "冯封大道", "朝阳路", "龙翔大道", "月季路", "新园路"},
     {"龙翔公园", "中站区政府", "朱村菜市场", "焦作市第二人民医院"}},
    {"410804", /* 马村区 */
     {"待王大道", "九里山路", "焦辉路", "马村大街", "文昌路"},
     {"马村区政府", "九里山公园", "待王菜市场", "马村区人民医院"}},
    {"410821", /* 修武县 */
     {"云台大道", "七贤路", "竹林大道", "东环路", "宁城路"},
     {"七贤公园", "修武县人民医院", "修武汽车站", "云台山游客中心"}},
    {"410822", /* 博爱县 */
     {"鸿昌路", "清化路", "站前路", "文化路", "中原路"},
     {"博爱县政府", "清化公园", "博爱县人民医院", "月山站"}},
    {"410823", /* 武陟县 */
     {"木栾大道", "兴华路", "朝阳路", "龙源路", "行政路"},
     {"武陟县人民医院", "嘉应观", "武陟县实验小学", "龙源湖广场"}},
    {"410825", /* 温县 */
     {"子夏大街", "黄河路", "太行路", "商贸路", "慈胜路"},
     {"温县人民广场", "太极广场", "温县人民医院", "温县汽车站"}},
    {"410882", /* 沁阳市 */
     {"怀府路", "沁园路", "建设路", "香港路", "覃怀路"},
     {"怀府广场", "沁阳市人民医院", "沁阳市第一中学", "沁阳汽车站"}},
    {"410883", /* 孟州市 */
     {"韩愈大街", "会昌路", "河阳大街", "西虢大道", "汇康路"},
     {"孟州市人民广场", "韩园", "孟州市人民医院", "孟州汽车站"}},
};

static const struct places fallback = {
    "", {"建设路", "人民路", "解放路", "文化路", "中原路", "新华街"}, {"市民广场", "人民医院", "实验小学", "汽车站"}};

/* Compounds (小区, 家属院) are found everywhere; Jiaozuo's coal mines and
 * factories left many 家属院. */
static const char *const compounds[] = {
    "幸福小区", "阳光花园", "和谐家园", "建业小区", "教师新村", "电厂家属院", "矿务局家属院", "纺织厂家属院",
    "锦祥花园", "映湖小区", "恒大名都", "翰林苑",
};
static const char *const corners[] = {"东北角", "东南角", "西南角", "西北角", ""};
static const char *const gates[] = {"北门", "南门", "东门", "西门", "门口", "附近"};

static const char *const surnames[] = {"王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴",
                                       "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "宋"};
static const char *const given[] = {"伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇",
                                    "艳", "杰", "娟", "涛", "明", "超", "桂英", "建国", "建华", "志强", "玉兰", "海燕"};

static const char *any(rng *r, const char *const *list, size_t n)
{
    return list[rng_below(r, n)];
}

static size_t nonnull(const char *const *list)
{
    size_t n = 0;
    while (n < MAX_PLACES && list[n])
        n++;
    return n;
}

static const struct places *places_of(const char *code)
{
    for (size_t i = 0; i < COUNT(districts); i++)
        if (strcmp(districts[i].district, code) == 0)
            return &districts[i];
    return &fallback;
}

/* The place phrase: "解放路与民主路交叉口东南角", "人民公园北门", ... */
static void place_text(const struct places *p, enum place kind, rng *r, char *out, size_t n)
{
    size_t nroads = nonnull(p->roads), nmarks = nonnull(p->landmarks);
    const char *road = any(r, p->roads, nroads);
    switch (kind) {
    case AT_CROSSING: {
        const char *other = any(r, p->roads, nroads);
        for (int i = 0; i < 8 && other == road; i++)
            other = any(r, p->roads, nroads);
        snprintf(out, n, "%s与%s交叉口%s", road, other, any(r, corners, COUNT(corners)));
        break;
    }
    case ON_ROAD:
        if (rng_unit(r) < 0.6)
            snprintf(out, n, "%s%d号附近", road, 1 + (int)rng_below(r, 300));
        else
            snprintf(out, n, "%s", road);
        break;
    case AT_LANDMARK: snprintf(out, n, "%s%s", any(r, p->landmarks, nmarks), any(r, gates, COUNT(gates))); break;
    case IN_COMPOUND:
        snprintf(out, n, "%s%s%d号楼", road, any(r, compounds, COUNT(compounds)), 1 + (int)rng_below(r, 20));
        break;
    }
}

void phrasebook_complaint(const struct district *d, rng *r, struct complaint *out)
{
    const struct problem *pb = &problems[rng_below(r, COUNT(problems))];
    char place[192];
    place_text(places_of(d->code), pb->place, r, place, sizeof place);
    out->category = pb->category;
    snprintf(out->description, sizeof out->description, "%s%s", place, pb->text);
    /* "孟州市人民广场" names its district already. */
    int named = strncmp(place, d->name, strlen(d->name)) == 0;
    snprintf(out->address, sizeof out->address, "焦作市%s%s", named ? "" : d->name, place);
}

void phrasebook_person(rng *r, char *name, size_t namelen, char *phone, size_t phonelen)
{
    snprintf(name, namelen, "%s%s", any(r, surnames, COUNT(surnames)), any(r, given, COUNT(given)));
    snprintf(phone, phonelen, "138%08llu", (unsigned long long)rng_below(r, 100000000));
}

const char *phrasebook_handled(const char *category, rng *r)
{
    for (size_t i = 0; i < COUNT(problems); i++)
        if (strcmp(category, problems[i].category) == 0)
            return problems[i].handled;
    /* Categories people do not report here (sensors' alarms open them). */
    static const struct {
        const char *prefix, *notes[2];
    } by_class[] = {
        {"01", {"已安排维修人员到场，更换破损设施并设置警示标志", "已临时围挡并完成修复"}},
        {"10", {"已组织抽排积水，道路恢复通行", "现场已清理完毕"}},
    };
    for (size_t i = 0; i < COUNT(by_class); i++)
        if (strncmp(category, by_class[i].prefix, 2) == 0)
            return any(r, by_class[i].notes, COUNT(by_class[i].notes));
    static const char *const general[] = {"已到场处置完毕", "问题已解决，现场照片见附件"};
    return any(r, general, COUNT(general));
}

const char *phrasebook_note(enum phrasebook_note kind, rng *r)
{
    static const char *const notes[NOTE_KINDS][3] = {
        [NOTE_RETURN] = {"经现场核实，该事项不属于本单位职责范围，请重新派遣", "该点位属产权单位自管，建议转交相关部门",
                         "该点位不在本单位辖区，申请回退"},
        [NOTE_CHECK_FAILED] = {"现场核查问题仍未解决，返工处理", "处置不彻底，现场仍有残留",
                               "反馈照片与现场不符，请重新处置"},
        [NOTE_EXTEND] = {"需协调产权单位共同处置，申请延期", "配件需要采购，申请延期",
                         "涉及多个部门，需联合执法，申请延期"},
    };
    assert(kind < NOTE_KINDS);
    return any(r, notes[kind], COUNT(notes[kind]));
}
