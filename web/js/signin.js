// signin — the sign-in dialog shared by the operator pages: an API key is
// checked with GET /api/v1/whoami and kept in localStorage; a refused key
// is said plainly (401) and not stored.

import { api, ApiError, forgetKey, storedKey, storeKey } from "./api.js";

const ROLE_NAMES = { admin: "管理员", operator: "值班员", dept: "部门", grid: "网格员", viewer: "访客", hotline: "12345热线" };

export function roleName(role) {
  return ROLE_NAMES[role] ?? role;
}

function message(err) {
  if (err instanceof ApiError && err.status === 401)
    return `密钥无效或已吊销（401）：${err.message}`;
  if (err instanceof ApiError)
    return `登录失败（${err.status}）：${err.message}`;
  return `无法连接服务器：${err.message}`;
}

// Resolves with the principal once a key works; shows the dialog as long as
// needed. notice: a reason to show (e.g. the stored key stopped working).
export async function signIn(notice = "") {
  const dialog = document.getElementById("signin");
  const form = dialog.querySelector("form");
  const error = dialog.querySelector(".error");
  if (!notice && storedKey()) {
    try {
      return await api("/api/v1/whoami");
    } catch (err) {
      forgetKey();
      notice = message(err);
    }
  }
  error.textContent = notice;
  dialog.hidden = false;
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const key = form.elements.key.value.trim();
      try {
        const who = await api("/api/v1/whoami", { key });
        storeKey(key);
        form.reset();
        dialog.hidden = true;
        resolve(who);
      } catch (err) {
        error.textContent = message(err);
      }
    };
  });
}

export function signOut() {
  forgetKey();
  location.reload();
}
