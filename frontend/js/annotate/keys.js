// Keyboard shortcuts of the annotate view. One table feeds both the handler and the help
// panel, so the panel cannot list a key that does nothing (or miss one that does something).

import { h } from "../dom.js";

/**
 * [keys shown, description, matcher(e) -> bool, action name]. Matchers see the KeyboardEvent;
 * letters are matched case-insensitively and without Ctrl/Meta/Alt.
 */
const plain = (letter) => (e) => !e.ctrlKey && !e.metaKey && !e.altKey && e.key.toLowerCase() === letter;
const ctrl = (e) => e.ctrlKey || e.metaKey;
// Tab belongs to the canvas only while it (or nothing) has the focus: from a button, select or
// the help panel it moves the focus as usual, so the page stays usable from the keyboard.
const onStage = (e) => e.target === document.body || e.target === document.documentElement || !!e.target?.classList?.contains("annotate-stage");
const tab = (shift) => (e) => e.key === "Tab" && e.shiftKey === shift && !ctrl(e) && !e.altKey && onStage(e);

/** What an action returns to leave the key's default alone (Tab with nothing to cycle). */
export const PASS = Symbol("pass");

export const SHORTCUTS = [
  [["Left click"], "Positive click on the selected object; with none selected, on the mask under the pointer (the method refines it); inside a proposal it selects the proposal; else a new object", null, null],
  [["Right click"], "Negative click", null, null],
  [["N"], "New object (also on top of an existing mask)", plain("n"), "newObject"],
  [["Space"], "Finish the object: deselect, so the next click starts a new one (hold Space and drag to pan)", null, null],
  [["Ctrl", "Z"], "Undo the last prompt of the selected object, or with none selected of the object edited last", (e) => ctrl(e) && !e.shiftKey && e.key.toLowerCase() === "z", "undo"],
  [["Ctrl", "Shift", "Z"], "Redo (also Ctrl+Y)", (e) => ctrl(e) && ((e.shiftKey && e.key.toLowerCase() === "z") || e.key.toLowerCase() === "y"), "redo"],
  [["Tab"], "Next mask of the selected object, when the method ranked several (the side panel says which); from a button or list, Tab moves the focus as usual", tab(false), "candidateNext"],
  [["Shift", "Tab"], "Previous mask of the selected object (Ctrl+Z undoes a choice)", tab(true), "candidatePrev"],
  [["1", "…", "9"], "Give the selected object the project's 1st … 9th label", (e) => !ctrl(e) && !e.altKey && /^[1-9]$/.test(e.key), "label"],
  [["C"], "Click tool", plain("c"), "tool:click"],
  [["S"], "Scribble tool (drag; right or Shift = negative)", plain("s"), "tool:scribble"],
  [["X"], "Extreme points tool (four clicks make a new object)", plain("x"), "tool:extreme"],
  [["R"], "Box tool: drag a rectangle around the object (the selected one, else a new one); clicks after it refine it", plain("r"), "tool:box"],
  [["B"], "Brush: paint the selected object", plain("b"), "tool:brush"],
  [["E"], "Eraser: erase from the selected object", plain("e"), "tool:eraser"],
  [["P"], "Pan tool", plain("p"), "tool:pan"],
  [["["], "Smaller brush", (e) => !ctrl(e) && e.key === "[", "brushDown"],
  [["]"], "Larger brush", (e) => !ctrl(e) && e.key === "]", "brushUp"],
  [["A"], "Accept the selected proposal as it is (proposals: the batch method's regions, hidden unless shown in View)", plain("a"), "acceptProposal"],
  [["L"], "Find all: type or pick a label; every instance of it in the image becomes an object of that label, shown and pending (A keeps it, Delete removes it)", plain("l"), "findAll"],
  [["D"], "Mark this image done for the task, or take the mark back (the task's progress counts it)", plain("d"), "toggleDone"],
  [["Delete"], "Delete the selected object", (e) => e.key === "Delete" || e.key === "Backspace", "delete"],
  [["Esc"], "Cancel the extreme points, stroke or box being placed, else deselect", (e) => e.key === "Escape", "escape"],
  [["F"], "Fit the image to the window", plain("f"), "fit"],
  [["Ctrl", "S"], "Save", (e) => ctrl(e) && e.key.toLowerCase() === "s", "save"],
  [["Wheel"], "Zoom around the cursor", null, null],
  [["Middle drag"], "Pan", null, null],
  [["?", "H"], "Show or hide this help", (e) => !ctrl(e) && (e.key === "?" || e.key.toLowerCase() === "h"), "help"],
];

/** The action name for a keydown, or null. */
export function actionFor(e) {
  for (const [, , match, action] of SHORTCUTS) {
    if (match && match(e)) return action;
  }
  return null;
}

/**
 * Listen on window: run(action, event) for a key of SHORTCUTS (the key's default is prevented
 * unless run returns PASS); Space is special (a plain press finishes the object, holding it
 * while dragging pans): space.down() on press, space.up() on release. Returns the function
 * that stops listening.
 */
export function installKeys(run, space) {
  const isSpace = (e) => e.code === "Space" || e.key === " ";
  const onKeyDown = (e) => {
    if (typingInField(e)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.target?.closest?.("dialog")) return; // a dialog (Submit's question) has the keys
    if (isSpace(e)) {
      e.preventDefault(); // no page scroll, no "press" of a focused button
      if (!e.repeat) space.down();
      return;
    }
    const action = actionFor(e);
    if (!action) return;
    let result;
    try {
      result = run(action, e);
    } finally {
      if (result !== PASS) e.preventDefault();
    }
  };
  const onKeyUp = (e) => {
    if (!isSpace(e) || typingInField(e)) return;
    e.preventDefault();
    space.up();
  };
  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  return () => {
    window.removeEventListener("keydown", onKeyDown);
    window.removeEventListener("keyup", onKeyUp);
  };
}

/** Keys typed into a field belong to the field (Escape still leaves it). */
export function typingInField(e) {
  const t = e.target;
  const tag = t?.tagName;
  if (t?.isContentEditable || tag === "TEXTAREA" || tag === "SELECT") return true;
  return tag === "INPUT" && !["checkbox", "range", "button", "radio"].includes(t.type);
}

export function helpPanel(onClose) {
  return h(
    "aside",
    { class: "annotate-help", role: "dialog", "aria-label": "Keyboard shortcuts", hidden: true },
    h("div", { class: "panel-head" }, h("h2", {}, "Keyboard shortcuts"), h("div", { class: "spacer" }), h("button", { type: "button", class: "small-button", onclick: onClose }, "Close")),
    h(
      "table",
      { class: "table keys-table" },
      h(
        "tbody",
        {},
        SHORTCUTS.map(([keys, text]) =>
          h(
            "tr",
            {},
            h("td", { class: "keys-cell" }, keys.map((k, i) => [i ? " " : null, k === "…" ? "…" : h("kbd", {}, k)])),
            h("td", {}, text),
          ),
        ),
      ),
    ),
  );
}
