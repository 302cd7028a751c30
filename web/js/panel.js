// panel — the honest state line of a dashboard panel: while its API is
// missing it says so (未启用) instead of drawing numbers it does not have.

import { ApiError } from "./api.js";

// Shows text in the panel's state line (empty text hides it) and marks the
// panel so its body is dimmed while the state is not "ok".
function setState(panel, state, text = "") {
  panel.dataset.state = state;
  const line = panel.querySelector(".state");
  line.textContent = text;
  line.hidden = !text;
}

function explain(err) {
  if (!(err instanceof ApiError))
    return ["error", `加载失败：${err.message}`];
  if (err.missing)
    return ["missing", "暂无数据 · 接口未启用"];
  if (err.status === 403)
    return ["denied", "无权查看（当前角色）"];
  return ["error", `加载失败：${err.message}`];
}

// Runs load() for the panel; load may return a text saying there is nothing
// to show (e.g. 当前无活动告警). A 401 goes up (the key is no longer valid),
// any other failure becomes the panel's state line.
export async function guarded(panel, load) {
  try {
    const empty = await load();
    setState(panel, empty ? "empty" : "ok", empty ?? "");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401)
      throw err;
    setState(panel, ...explain(err));
  }
}

// Sets a number tile of the big screen: its value and the line under it.
export function tile(id, value, sub) {
  const t = document.getElementById(id);
  t.querySelector(".value").textContent = value;
  t.querySelector(".sub").textContent = sub;
}
