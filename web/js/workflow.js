// workflow — the case actions the operator pages offer: which actions a
// status has, which roles may take them and what each asks for. The server's
// table (src/cases/workflow.c) decides; this only avoids offering buttons
// that would certainly be refused. A refused action shows the server's error.

const OPS = ["admin", "operator"];
const INTAKE = [...OPS, "hotline"];
const DEPT = ["admin", "dept"];
const CHECKERS = [...OPS, "grid"];

// label, roles, and the fields the action's body takes (see fieldsFor).
export const ACTIONS = {
  report: { label: "上报", roles: [] }, // history only: intake is POST /api/v1/cases
  accept: { label: "受理", roles: INTAKE },
  reject: { label: "不予受理/作废", roles: INTAKE, fields: ["note"] },
  file: { label: "立案", roles: OPS },
  dispatch: { label: "派遣", roles: OPS, fields: ["department"] },
  return: { label: "回退", roles: DEPT, fields: ["reason"] },
  start: { label: "开始处置", roles: DEPT },
  handle: { label: "处置反馈", roles: DEPT, fields: ["note"] },
  extend: { label: "申请延期", roles: DEPT, fields: ["hours", "reason"] },
  approve_extension: { label: "批准延期", roles: OPS },
  deny_extension: { label: "驳回延期", roles: OPS },
  supervise: { label: "督办", roles: OPS, fields: ["note"] },
  check: { label: "核查", roles: CHECKERS, fields: ["passed", "note"] },
  close: { label: "结案", roles: OPS },
  evaluate: { label: "回访评价", roles: INTAKE, fields: ["rating"] },
  park: { label: "挂账", roles: OPS, fields: ["note"] },
  unpark: { label: "取消挂账", roles: OPS },
  reopen: { label: "重新办理", roles: INTAKE, fields: ["note"] },
  unlink: { label: "取消合并", roles: OPS },
};

const BY_STATUS = {
  reported: ["accept", "reject"],
  accepted: ["file", "reject"],
  filed: ["dispatch", "reject", "park"],
  returned: ["dispatch", "reject", "park"],
  dispatched: ["start", "return", "dispatch", "park", "supervise"],
  in_progress: ["handle", "return", "extend", "park", "supervise"],
  extended: ["approve_extension", "deny_extension", "handle", "supervise"],
  rework: ["start", "handle", "supervise"],
  handled: ["check"],
  checked: ["close"],
  closed: ["evaluate", "reopen"],
  evaluated: ["reopen"],
  rejected: ["reopen", "unlink"],
  parked: ["unpark"],
};

export const STATUS_NAMES = {
  reported: "已上报", accepted: "已受理", filed: "已立案", dispatched: "已派遣", in_progress: "处置中",
  handled: "已处置", checked: "已核查", closed: "已结案", evaluated: "已评价", rejected: "不予受理",
  returned: "已回退", extended: "延期申请中", parked: "挂账", rework: "返工",
};

export const RATINGS = ["满意", "基本满意", "不满意"];

export function actionsFor(status, role) {
  return (BY_STATUS[status] ?? []).filter((a) => ACTIONS[a].roles.includes(role));
}
