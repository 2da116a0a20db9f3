// #/tasks/{task}/images/{id} — interactive annotation of one image of a task.
//
// The image and its masks on a zoomable canvas; clicks, scribbles, extreme points and brush
// edits go to the server over ws/annotate/ (annotate/controller.js), masks come back as box
// crops (annotate/layers.js) and are composited per frame (annotate/renderer.js).
// Test hooks: data-state / data-objects / data-masks / data-stale / data-pending / data-selected /
// data-image on canvas.annotate-canvas, and window.__annotate (objects, maskAt, toScreen):
// see testHooks below.
//
// The tool bar enables the prompt tools whose kind the method in use declares
// (`opened.methods[*].prompts`, annotate/tools.js toolStates); no method is named here.

import { get } from "../api.js";
import { h, mount, showError } from "../dom.js";
import { Controller } from "../annotate/controller.js";
import { helpPanel, installKeys, PASS } from "../annotate/keys.js";
import { candidateLine, latencyBox, ObjectList } from "../annotate/panel.js";
import { Renderer } from "../annotate/renderer.js";
import { firstEnabledTool, PointerInput, toolStates, TOOLS } from "../annotate/tools.js";
import { Viewport } from "../annotate/viewport.js";
import { navigate } from "../router.js";
import { breadcrumbs, stateBadge } from "./common.js";

export async function annotateView(root, { task: taskId, id, object: focusId = null }, ctx) {
  document.title = "Annotate · Maskwright";
  mount(root, h("p", { class: "muted annotate-loading" }, "Loading task…"));
  let task;
  try {
    task = await get(`/api/tasks/${taskId}/`, { signal: ctx.signal });
  } catch (error) {
    if (!ctx.alive() || error.name === "AbortError") return;
    showError(error);
    return notFound(root, error.status === 404 ? "This task does not exist, or it is not assigned to you." : "The task could not be loaded.");
  }
  const imageIds = task.image_ids || [];
  const index = imageIds.indexOf(id);
  if (index < 0) {
    showError(`image ${id} is not part of task “${task.name}”`);
    return notFound(root, "This image is not part of the task.", imageIds.length ? `#/tasks/${taskId}/images/${imageIds[0]}` : null);
  }
  const [project, imageInfo] = await Promise.all([
    get(`/api/projects/${task.project}/`, { signal: ctx.signal }).catch(() => ({ id: task.project, name: `Project ${task.project}` })),
    get(`/api/images/${id}/`, { signal: ctx.signal }).catch(() => null), // only for its name; the socket has the rest
  ]);
  if (!ctx.alive()) return;
  document.title = `${task.name} · Annotate · Maskwright`;

  const viewport = new Viewport();
  const view = { bitmap: null, opacity: 0.5, showMasks: true, helpOpen: false, fatal: false };
  let flashTimer = null;

  // ---- Layout ---------------------------------------------------------------------------
  const canvas = h("canvas", { class: "annotate-canvas", dataset: { state: "loading", objects: "0", masks: "0", pending: "0" }, "aria-label": "Image with its objects" });
  const overlayCanvas = h("canvas", { class: "annotate-overlay", "aria-hidden": "true" });
  const help = helpPanel(() => toggleHelp(false));
  const stageNote = h("div", { class: "stage-note", hidden: true });
  const stage = h("div", { class: "annotate-stage", tabindex: "0", dataset: { tool: "click" } }, canvas, overlayCanvas, stageNote, help);
  const statusDot = h("span", { class: "status-dot", "aria-hidden": "true" });
  const statusText = h("span", { class: "status-text" }, "Connecting…");
  const retryNow = h("button", { type: "button", class: "link small", hidden: true, onclick: () => controller.socket.reconnect() }, "retry now");
  const status = h("span", { class: "annotate-status", role: "status", dataset: { status: "connecting" } }, statusDot, statusText, retryNow);
  const button = (text, title, onclick, cls = "secondary") => h("button", { type: "button", class: cls, title, onclick: (e) => (e.currentTarget.blur(), onclick()) }, text);
  const undoBtn = button("↶ Undo", "Undo the selected object's last prompt (Ctrl+Z)", () => controller.step(false));
  const redoBtn = button("↷ Redo", "Redo (Ctrl+Shift+Z)", () => controller.step(true));
  const taskState = h("span", { class: "task-state" }, stateBadge(task.state));
  const position = h("span", { class: "muted position" }, `${index + 1} / ${imageIds.length}`);
  const go = (delta) => imageIds[index + delta] && navigate(`#/tasks/${taskId}/images/${imageIds[index + delta]}`);
  const prev = button("← Prev", "Previous image of the task", () => go(-1));
  const next = button("Next →", "Next image of the task", () => go(1));
  prev.disabled = index === 0;
  next.disabled = index === imageIds.length - 1;
  const crumbs = breadcrumbs([["Projects", "#/"], [project.name, `#/projects/${project.id}`], [task.name, `#/projects/${project.id}`], [imageInfo?.original_name || `Image ${id}`]]);
  const imageCrumb = crumbs.lastElementChild; // renamed once `opened` tells the file name

  let tools = toolStates(null); // name -> {enabled, reason} under the method in use
  const toolButtons = TOOLS.map((t) => h("button", { type: "button", class: "tool-button", title: t.title, dataset: { tool: t.name }, "aria-pressed": "false", onclick: (e) => (e.currentTarget.blur(), setTool(t.name)) }, t.text));
  const brushText = h("span", { class: "brush-size" }, "");
  // Selects hand the keyboard back after a choice, so that shortcuts work again at once.
  const methodSelect = h("select", { class: "compact method-select", "aria-label": "Method", onchange: (e) => (e.target.blur(), chooseMethod()) });
  const backboneSelect = h("select", { class: "compact backbone-select", "aria-label": "Backbone", onchange: (e) => (e.target.blur(), chooseMethod()) });
  const masksToggle = h("input", { type: "checkbox", checked: true, id: "annotate-show-masks", onchange: () => ((view.showMasks = masksToggle.checked), renderer.request(true, false)) });
  const opacity = h("input", { type: "range", min: "0.1", max: "0.9", step: "0.05", value: String(view.opacity), "aria-label": "Mask opacity", title: "Mask opacity", oninput: () => ((view.opacity = Number(opacity.value)), renderer.request(true, false)) });
  const zoomText = h("span", { class: "muted small zoom-text" }, "");
  const newLabelSelect = h("select", { class: "compact", "aria-label": "Label for new objects", onchange: () => (newLabelSelect.blur(), controller.setLabel(null, newLabelSelect.value ? Number(newLabelSelect.value) : null)) });
  const flash = h("p", { class: "annotate-flash small", "aria-live": "polite" }, "");
  const latency = latencyBox();
  const candidate = candidateLine(); // "mask 2 of 3 · score 0.81" of the selected object
  const objectList = new ObjectList({
    select: (oid) => controller.select(oid),
    setLabel: (oid, labelId) => controller.setLabel(oid, labelId),
    toggle: (oid, visible) => {
      const obj = controller.session.objects.get(oid);
      if (obj) obj.hidden = !visible;
      renderer.request(true, true);
    },
    remove: (oid) => controller.remove(oid),
  });

  mount(
    root,
    h(
      "div",
      { class: "image-toolbar annotate-toolbar" },
      crumbs,
      taskState,
      h("div", { class: "spacer" }),
      status,
      undoBtn,
      redoBtn,
      button("Save", "Save (Ctrl+S)", () => save(), "primary save-button"),
      button("Submit", "Save, then mark the task as submitted", () => submit()),
      prev,
      position,
      next,
      button("?", "Keyboard shortcuts (? or H)", () => toggleHelp(), "secondary help-button"),
    ),
    h(
      "div",
      { class: "image-layout annotate-layout" },
      stage,
      h(
        "aside",
        { class: "image-side annotate-side", "aria-label": "Annotation tools" },
        h("h2", {}, "Tools"),
        h("div", { class: "tool-grid", role: "toolbar", "aria-label": "Tools" }, toolButtons),
        h("div", { class: "side-row" }, h("span", { class: "muted small" }, "Brush"), button("−", "Smaller brush ([)", () => setBrush(-1), "small-button"), brushText, button("+", "Larger brush (])", () => setBrush(1), "small-button")),
        h("div", { class: "side-row" }, h("span", { class: "muted small" }, "Method"), methodSelect, backboneSelect),
        h("h2", {}, "View"),
        h("div", { class: "side-row" }, h("label", { class: "check", for: "annotate-show-masks" }, masksToggle, " Masks"), opacity),
        h("div", { class: "side-row" }, button("Fit", "Fit the image (F)", () => fit(), "small-button"), zoomText),
        h("div", { class: "panel-head objects-head" }, h("h2", {}, "Objects"), objectList.count, h("div", { class: "spacer" }), button("+ New", "New object (N)", () => controller.newObject(), "small-button")),
        h("div", { class: "side-row" }, h("span", { class: "muted small" }, "New objects get"), newLabelSelect),
        objectList.el,
        candidate.el,
        h("h2", {}, "Latency"),
        latency.el,
        flash,
      ),
    ),
  );

  // ---- Drawing ----------------------------------------------------------------------------
  const renderer = new Renderer(canvas, overlayCanvas, viewport);
  const pointer = new PointerInput(stage, viewport, {
    click: (x, y, positive) => controller.click(x, y, positive),
    stroke: (kind, points, positive, width) => {
      if (kind === "scribble") controller.scribble(points, positive, width);
      else controller.edit(kind === "eraser" ? "erase" : "paint", points, width);
    },
    extreme: (points) => controller.extreme(points),
    changed: ({ view: moved }) => {
      renderer.request(moved, true);
      if (moved) zoomText.textContent = `${Math.round(viewport.scale * 100)} %`;
    },
  });
  renderer.scene = () => ({
    bitmap: view.bitmap,
    session: controller.session,
    opacity: view.opacity,
    showMasks: view.showMasks,
    overlay: { queued: controller.queued, extreme: pointer.extreme, stroke: pointer.stroke, cursor: pointer.cursor },
  });
  const observer = new ResizeObserver(() => {
    const box = stage.getBoundingClientRect();
    viewport.setStage(box.width, box.height);
    renderer.resize(box.width, box.height);
    zoomText.textContent = `${Math.round(viewport.scale * 100)} %`;
  });
  observer.observe(stage);

  function fit() {
    viewport.fit();
    zoomText.textContent = `${Math.round(viewport.scale * 100)} %`;
    renderer.request(true, true);
  }

  function setImageSize(width, height) {
    if (viewport.imageWidth === width && viewport.imageHeight === height) return;
    viewport.setImage(width, height);
    fit();
  }

  function setTool(name) {
    const state = tools.get(name);
    if (state && !state.enabled) {
      showFlash(`${state.reason}.`); // a shortcut of a disabled tool does nothing else
      return;
    }
    pointer.setTool(name);
    for (const b of toolButtons) b.setAttribute("aria-pressed", b.dataset.tool === name ? "true" : "false");
  }

  function setBrush(direction) {
    const w = pointer.brushWidth;
    pointer.setBrush(direction > 0 ? Math.max(w + 1, w * 1.25) : Math.min(w - 1, w * 0.8));
    brushText.textContent = `${pointer.brushWidth} px`;
  }

  function showFlash(text) {
    flash.textContent = text;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => (flash.textContent = ""), 4000);
  }

  function toggleHelp(open = !view.helpOpen) {
    view.helpOpen = open;
    help.hidden = !open;
  }

  // ---- Server state -> page ---------------------------------------------------------------
  const controller = new Controller({
    imageId: id,
    taskId,
    ui: {
      status: ({ state, retryIn, pingMs }) => {
        status.dataset.status = state;
        retryNow.hidden = state !== "retrying";
        const texts = {
          open: `Connected${pingMs !== null ? ` · ping ${pingMs} ms` : ""}`,
          retrying: `Disconnected, retrying in ${retryIn} s`,
          closed: "Closed",
          denied: "Signed out or not allowed",
          connecting: "Connecting…",
        };
        statusText.textContent = texts[state] || state;
        if (state === "denied") {
          showError("The annotation server refused this page: sign in again (the session may have expired).");
          stageNote.hidden = false;
          mount(stageNote, "Not connected: ", h("a", { href: `/login/?next=${encodeURIComponent(location.pathname + location.hash)}` }, "sign in again"), ".");
        }
      },
      rebuild: () => {
        const s = controller.session;
        if (s.image) {
          setImageSize(s.image.width, s.image.height);
          imageCrumb.textContent = s.image.name || `Image ${id}`;
          if (s.image.name) document.title = `${s.image.name} · ${task.name} · Maskwright`;
        }
        fillLabels();
        fillMethods();
        objectList.render(s);
        refresh();
        focusOnce();
      },
      objectChanged: (obj) => {
        objectList.update(obj);
        refresh();
      },
      objectRemoved: (oid) => {
        objectList.remove(oid);
        refresh();
      },
      selectionChanged: () => {
        objectList.select(controller.session.selected);
        refresh();
      },
      methodChanged: fillMethods,
      latency: (info) => latency.set(info),
      saved: (reply) => showFlash(`Saved · ${reply.objects} object${reply.objects === 1 ? "" : "s"} on this image`),
      submitted: (reply) => {
        mount(taskState, stateBadge(reply.state));
        showFlash(`Task ${reply.state.replace(/_/g, " ")}`);
      },
      fatal: (message) => {
        view.fatal = true;
        canvas.dataset.state = "error";
        stageNote.hidden = false;
        stageNote.textContent = `This image cannot be annotated: ${message}`;
      },
      flash: showFlash,
      redraw: () => renderer.request(false, true),
      hooks: () => hooks(),
      error: (error, context) => showError(error, context),
    },
  });

  // #/tasks/{task}/images/{id}/objects/{object}: select that object once the image is open.
  let focus = focusId;
  function focusOnce() {
    if (focus === null) return;
    const wanted = focus;
    focus = null;
    if (controller.session.objects.has(wanted)) controller.select(wanted);
    else showFlash(`Object ${wanted} is not on this image (any more).`);
  }

  function refresh() {
    const obj = controller.session.selectedObject;
    undoBtn.disabled = !controller.canStep(obj, false);
    redoBtn.disabled = !controller.canStep(obj, true);
    candidate.set(obj);
    renderer.request(true, true);
    hooks();
  }

  function fillLabels() {
    const labels = controller.session.labels;
    const option = (l) => h("option", { value: String(l.id) }, l.name);
    mount(newLabelSelect, h("option", { value: "" }, "no label"), labels.map(option));
    newLabelSelect.value = controller.newLabel && controller.session.labelById.has(controller.newLabel) ? String(controller.newLabel) : "";
  }

  function fillMethods() {
    const s = controller.session;
    mount(methodSelect, s.methods.map((m) => h("option", { value: m.name }, m.label || m.name)));
    methodSelect.value = s.method;
    methodSelect.disabled = !s.methods.length;
    const backbones = s.methodInfo()?.backbones || [];
    mount(backboneSelect, backbones.map((b) => h("option", { value: b }, b)));
    backboneSelect.value = s.backbone;
    backboneSelect.hidden = backbones.length < 2;
    updateTools();
  }

  /** Enable the tools the method in use accepts; leave a tool it no longer accepts. */
  function updateTools() {
    tools = toolStates(controller.session.currentMethod());
    for (const b of toolButtons) {
      const t = TOOLS.find((x) => x.name === b.dataset.tool);
      const { enabled, reason } = tools.get(t.name);
      b.disabled = !enabled;
      b.title = enabled ? t.title : `${t.title} — ${reason}`;
    }
    const current = tools.get(pointer.tool);
    if (current && !current.enabled) {
      const first = firstEnabledTool(tools);
      if (first) {
        setTool(first);
        showFlash(`${current.reason}: ${TOOLS.find((x) => x.name === first).text} tool.`);
      }
    }
  }

  function chooseMethod() {
    const info = controller.session.methodInfo(methodSelect.value);
    const backbone = info?.backbones?.includes(backboneSelect.value) ? backboneSelect.value : info?.backbones?.[0];
    controller.setMethod(methodSelect.value, backbone);
  }

  async function save() {
    const reply = await controller.save();
    if (!reply) showFlash("Not saved — see the message above.");
  }

  async function submit() {
    await controller.save();
    await controller.submit();
  }

  // ---- Test hooks -------------------------------------------------------------------------
  function hooks() {
    const s = controller.session;
    const ready = view.bitmap && controller.opened && !view.fatal;
    if (!view.fatal) canvas.dataset.state = ready ? "ready" : "loading";
    canvas.dataset.objects = String(s.objects.size);
    canvas.dataset.masks = String(s.masksApplied);
    canvas.dataset.stale = String(s.masksStale);
    canvas.dataset.pending = String(controller.socket.pendingCount);
    canvas.dataset.selected = s.selected === null ? "" : String(s.selected);
  }

  const testHooks = {
    objects: () =>
      [...controller.session.objects.values()]
        .sort((a, b) => a.id - b.id)
        .map((o) => ({ id: o.id, box: o.layer ? [o.layer.x, o.layer.y, o.layer.w, o.layer.h] : null, area: o.layer ? o.layer.area : 0, label_id: o.label_id, version: o.version, hidden: o.hidden, can_undo: o.can_undo, can_redo: o.can_redo, candidates: o.candidates })),
    /** The visible object drawn on top at image pixel (x, y), or 0. */
    maskAt: (x, y) => controller.session.maskAt(x, y),
    /** Client coordinates of the centre of image pixel (x, y). */
    toScreen: (x, y) => {
      const p = viewport.toStage(x + 0.5, y + 0.5);
      const r = stage.getBoundingClientRect();
      return { x: r.left + p.x, y: r.top + p.y };
    },
    selected: () => controller.session.selected,
    pending: () => controller.socket.pendingCount,
    frames: () => renderer.frames,
    lastFrameMs: () => renderer.lastFrameMs,
  };
  window.__annotate = testHooks;

  // ---- Keys ---------------------------------------------------------------------------
  const commands = {
    newObject: () => controller.newObject(),
    undo: () => controller.step(false),
    redo: () => controller.step(true),
    // Tab with one mask (or none yet) keeps its default: the focus moves on
    candidateNext: () => (controller.cycleCandidate(1) ? undefined : PASS),
    candidatePrev: () => (controller.cycleCandidate(-1) ? undefined : PASS),
    label: (e) => controller.labelByIndex(Number(e.key) - 1),
    brushDown: () => setBrush(-1),
    brushUp: () => setBrush(1),
    delete: () => controller.session.selected !== null && controller.remove(controller.session.selected),
    escape: () => pointer.cancel() || (view.helpOpen ? toggleHelp(false) : controller.finish()),
    fit: () => fit(),
    save: () => save(),
    help: () => toggleHelp(),
  };
  const removeKeys = installKeys(
    (action, e) => (action.startsWith("tool:") ? setTool(action.slice(5)) : commands[action]?.(e)),
    { down: () => pointer.spaceDown(), up: () => pointer.spaceUp() && controller.finish() },
  );

  ctx.onCleanup(() => {
    removeKeys();
    observer.disconnect();
    pointer.destroy();
    renderer.cancel();
    controller.close();
    clearTimeout(flashTimer);
    if (window.__annotate === testHooks) delete window.__annotate;
  });

  // ---- Start ------------------------------------------------------------------------------
  setTool("click");
  fillMethods(); // empty and disabled until `opened` lists the methods
  brushText.textContent = `${pointer.brushWidth} px`;
  latency.set(null);
  controller.start();
  hooks();
  const image = new Image();
  image.src = `/api/images/${id}/file`;
  try {
    await image.decode();
    // An ImageBitmap is decoded once, up front: no decode stalls while panning a 12 MP image.
    const bitmap = typeof createImageBitmap === "function" ? await createImageBitmap(image).catch(() => image) : image;
    if (!ctx.alive()) return;
    view.bitmap = bitmap;
    canvas.dataset.image = "loaded";
    // Warm the browser cache for Next (the server already computes that image's features).
    if (imageIds[index + 1]) new Image().src = `/api/images/${imageIds[index + 1]}/file`;
    if (!viewport.imageWidth) setImageSize(bitmap.width, bitmap.height);
  } catch {
    if (!ctx.alive()) return;
    showError(`The image file could not be loaded (/api/images/${id}/file)`);
    view.fatal = true;
    canvas.dataset.state = "error";
  }
  refresh();
}

function notFound(root, text, link = null) {
  mount(
    root,
    h(
      "section",
      { class: "empty-page annotate-missing" },
      h("h1", {}, "Cannot annotate"),
      h("p", {}, text, " ", link ? h("a", { href: link }, "Open the task's first image") : null, link ? " · " : "", h("a", { href: "#/" }, "Back to your projects"), "."),
    ),
  );
}
