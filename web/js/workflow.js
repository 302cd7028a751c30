// workflow — the case vocabulary the pages need before any case is loaded:
// the statuses' names (the case desk's filter) and the ratings (the citizen
// page, the evaluate form). Which actions a case offers, their names and
// fields come with the case from the server (GET /api/v1/cases/{id}
// "actions"; src/cases/workflow.c is the one table).

export const STATUS_NAMES = {
  reported: "已上报", accepted: "已受理", filed: "已立案", dispatched: "已派遣", in_progress: "处置中",
  handled: "已处置", checked: "已核查", closed: "已结案", evaluated: "已评价", rejected: "不予受理",
  returned: "已回退", extended: "延期申请中", parked: "挂账", rework: "返工",
};

export const RATINGS = ["满意", "基本满意", "不满意"];
