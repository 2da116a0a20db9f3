// The side panel's tools and method pickers. The tool bar enables the prompt tools whose kind
// the method in use declares (`opened.methods[*].prompts`, tools.js toolStates); no method is
// named here. Selects hand the keyboard back after a choice, so shortcuts work again at once.

import { h, mount } from "../dom.js";
import { firstEnabledTool, toolStates, TOOLS } from "./tools.js";

export class MethodTools {
  /** flash(text): a short note; choose(method, backbone): the annotator picked a method. */
  constructor({ flash, choose }) {
    this.flash = flash;
    this.pointer = null; // PointerInput, set by attach()
    this.session = null;
    this.tools = toolStates(null); // name -> {enabled, reason} under the method in use
    this.buttons = TOOLS.map((t) => h("button", { type: "button", class: "tool-button", title: t.title, dataset: { tool: t.name }, "aria-pressed": "false", onclick: (e) => (e.currentTarget.blur(), this.setTool(t.name)) }, t.text));
    this.grid = h("div", { class: "tool-grid", role: "toolbar", "aria-label": "Tools" }, this.buttons);
    const picked = (e) => {
      e.target.blur();
      const info = this.session?.methodInfo(this.methodSelect.value);
      const backbone = info?.backbones?.includes(this.backboneSelect.value) ? this.backboneSelect.value : info?.backbones?.[0];
      choose(this.methodSelect.value, backbone);
    };
    this.methodSelect = h("select", { class: "compact method-select", "aria-label": "Method", onchange: picked });
    this.backboneSelect = h("select", { class: "compact backbone-select", "aria-label": "Backbone", onchange: picked });
    this.methodRow = h("div", { class: "side-row" }, h("span", { class: "muted small" }, "Method"), this.methodSelect, this.backboneSelect);
  }

  attach(pointer) {
    this.pointer = pointer;
  }

  setTool(name) {
    const state = this.tools.get(name);
    if (state && !state.enabled) {
      this.flash(`${state.reason}.`); // a shortcut of a disabled tool does nothing else
      return;
    }
    this.pointer.setTool(name);
    for (const b of this.buttons) b.setAttribute("aria-pressed", b.dataset.tool === name ? "true" : "false");
  }

  /** Fill the pickers from the session (empty and disabled until `opened` lists methods). */
  fill(session) {
    this.session = session;
    // methods left out for want of a checkpoint on any worker: shown disabled, the reason as title
    const missing = (session.unavailable || []).map((m) => h("option", { value: "", disabled: true, title: m.why, dataset: { unavailable: m.name } }, `${m.label || m.name} (no weights)`));
    mount(this.methodSelect, session.methods.map((m) => h("option", { value: m.name }, m.label || m.name)), missing);
    this.methodSelect.value = session.method;
    this.methodSelect.disabled = !session.methods.length;
    const backbones = session.methodInfo()?.backbones || [];
    mount(this.backboneSelect, backbones.map((b) => h("option", { value: b }, b)));
    this.backboneSelect.value = session.backbone;
    this.backboneSelect.hidden = backbones.length < 2;
    this.update(session);
  }

  /** Enable the tools the method in use accepts; leave a tool it no longer accepts. */
  update(session) {
    this.tools = toolStates(session.currentMethod());
    for (const b of this.buttons) {
      const t = TOOLS.find((x) => x.name === b.dataset.tool);
      const { enabled, reason } = this.tools.get(t.name);
      b.disabled = !enabled;
      b.title = enabled ? t.title : `${t.title} — ${reason}`;
    }
    const current = this.tools.get(this.pointer.tool);
    if (current && !current.enabled) {
      const first = firstEnabledTool(this.tools);
      if (first) {
        this.setTool(first);
        this.flash(`${current.reason}: ${TOOLS.find((x) => x.name === first).text} tool.`);
      }
    }
  }
}
