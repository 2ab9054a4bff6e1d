// #/login: username and password (POST /api/login).

import { h, mount } from "../lib/dom.js";
import { t, lang, setLang } from "../lib/i18n.js";
import { login } from "../lib/api.js";

export function render(ctx) {
  ctx.setTitle(t("login.title"));
  const error = h("div", { class: "form-error", role: "alert", id: "login-error", hidden: true });
  const username = h("input", { name: "username", id: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));

  async function onSubmit(ev) {
    ev.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await login(username.value.trim(), password.value);
      ctx.afterLogin();
    } catch (e) {
      error.textContent = e.status === 401 ? t("login.bad") : e.status === 429 ? t("login.limited") : t("login.failed", { error: e.message });
      error.hidden = false;
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
    }
  }

  mount(ctx.root,
    h("div", { class: "login" },
      h("form", { class: "login-card", onsubmit: onSubmit },
        h("div", { class: "login-head" },
          h("span", { class: "logo big", "aria-hidden": "true" }),
          h("div", null, h("h1", null, t("app")), h("p", { class: "muted" }, t("login.subtitle")))),
        h("label", { for: "username" }, t("login.username")), username,
        h("label", { for: "password" }, t("login.password")), password,
        error,
        submit,
        h("button", { type: "button", class: "link lang-link", id: "lang-switch", onclick: () => {
          setLang(lang() === "zh" ? "en" : "zh");
          render(ctx);
        } }, t("switchLang")))));
}
