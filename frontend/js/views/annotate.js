// #/tasks/{task}/images/{id} — interactive annotation of one image of a task.
//
// The image and its masks on a zoomable canvas; clicks, scribbles, extreme points and brush
// edits go to the server over ws/annotate/ (annotate/controller.js), masks come back as box
// crops (annotate/layers.js) and are composited per frame (annotate/renderer.js).
// Test hooks: annotate/testhooks.js. The task's progress and the done mark: annotate/progress.js;
// Submit asks first when images are left (annotate/submit.js); proposals (pending pseudo
// labels) are hidden unless shown (annotate/proposals.js).
//
// The tool bar and method pickers: annotate/toolbar.js. Find all (L): annotate/findall.js.

import { get } from "../api.js";
import { h, mount, showError } from "../dom.js";
import { flashLine, loadBitmap, notFound, statusLine } from "../annotate/chrome.js";
import { Controller } from "../annotate/controller.js";
import { FindAll } from "../annotate/findall.js";
import { helpPanel, installKeys, PASS } from "../annotate/keys.js";
import { candidateLine, latencyBox, ObjectList } from "../annotate/panel.js";
import { TaskProgress } from "../annotate/progress.js";
import { adoptProposal, isProposal, ProposalToggle, proposalBar } from "../annotate/proposals.js";
import { Renderer } from "../annotate/renderer.js";
import { confirmSubmit } from "../annotate/submit.js";
import { installTestHooks, updateHooks } from "../annotate/testhooks.js";
import { MethodTools } from "../annotate/toolbar.js";
import { PointerInput } from "../annotate/tools.js";
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

  // ---- Layout ---------------------------------------------------------------------------
  const canvas = h("canvas", { class: "annotate-canvas", dataset: { state: "loading", objects: "0", masks: "0", pending: "0" }, "aria-label": "Image with its objects" });
  const overlayCanvas = h("canvas", { class: "annotate-overlay", "aria-hidden": "true" });
  const help = helpPanel(() => toggleHelp(false));
  const stageNote = h("div", { class: "stage-note", hidden: true });
  const stage = h("div", { class: "annotate-stage", tabindex: "0", dataset: { tool: "click" } }, canvas, overlayCanvas, stageNote, help);
  const status = statusLine(() => controller.socket.reconnect());
  const button = (text, title, onclick, cls = "secondary") => h("button", { type: "button", class: cls, title, onclick: (e) => (e.currentTarget.blur(), onclick()) }, text);
  const undoBtn = button("↶ Undo", "Undo the last prompt of the selected object, or of the object edited last (Ctrl+Z)", () => controller.step(false));
  const redoBtn = button("↷ Redo", "Redo (Ctrl+Shift+Z)", () => controller.step(true));
  const taskState = h("span", { class: "task-state" }, stateBadge(task.state));
  const progress = new TaskProgress({ taskId, imageId: id, error: (error, context) => showError(error, context) });
  const proposals = new ProposalToggle(() => (objectList.render(controller.session), refresh()));
  const findAll = new FindAll({ controller: () => controller, proposals }); // the controller comes below
  const proposal = proposalBar({ accept: () => acceptProposal(), remove: () => controller.session.selected !== null && controller.remove(controller.session.selected) });
  const position = h("span", { class: "muted position" }, `${index + 1} / ${imageIds.length}`);
  const go = (delta) => imageIds[index + delta] && navigate(`#/tasks/${taskId}/images/${imageIds[index + delta]}`);
  const prev = button("← Prev", "Previous image of the task", () => go(-1));
  const next = button("Next →", "Next image of the task", () => go(1));
  prev.disabled = index === 0;
  next.disabled = index === imageIds.length - 1;
  const crumbs = breadcrumbs([["Projects", "#/"], [project.name, `#/projects/${project.id}`], [task.name, `#/projects/${project.id}`], [imageInfo?.original_name || `Image ${id}`]]);
  const imageCrumb = crumbs.lastElementChild; // renamed once `opened` tells the file name

  const toolbar = new MethodTools({ flash: (text) => showFlash(text), choose: (method, backbone) => controller.setMethod(method, backbone) });
  const setTool = (name) => toolbar.setTool(name);
  const fillMethods = () => toolbar.fill(controller.session);
  const brushText = h("span", { class: "brush-size" }, "");
  const masksToggle = h("input", { type: "checkbox", checked: true, id: "annotate-show-masks", onchange: () => ((view.showMasks = masksToggle.checked), renderer.request(true, false)) });
  const opacity = h("input", { type: "range", min: "0.1", max: "0.9", step: "0.05", value: String(view.opacity), "aria-label": "Mask opacity", title: "Mask opacity", oninput: () => ((view.opacity = Number(opacity.value)), renderer.request(true, false)) });
  const zoomText = h("span", { class: "muted small zoom-text" }, "");
  const newLabelSelect = h("select", { class: "compact", "aria-label": "Label for new objects", onchange: () => (newLabelSelect.blur(), controller.setLabel(null, newLabelSelect.value ? Number(newLabelSelect.value) : null)) });
  const flash = flashLine();
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
      status.el,
      undoBtn,
      redoBtn,
      button("Save", "Save (Ctrl+S)", () => save(), "primary save-button"),
      progress.el,
      progress.button,
      button("Submit", "Save, then mark the task as submitted (asks first when images are not done)", () => submit()),
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
        toolbar.grid,
        h("div", { class: "side-row" }, h("span", { class: "muted small" }, "Brush"), button("−", "Smaller brush ([)", () => setBrush(-1), "small-button"), brushText, button("+", "Larger brush (])", () => setBrush(1), "small-button")),
        toolbar.methodRow,
        findAll.el,
        h("h2", {}, "View"),
        h("div", { class: "side-row" }, h("label", { class: "check", for: "annotate-show-masks" }, masksToggle, " Masks"), opacity),
        proposals.el,
        h("div", { class: "side-row" }, button("Fit", "Fit the image (F)", () => fit(), "small-button"), zoomText),
        h("div", { class: "panel-head objects-head" }, h("h2", {}, "Objects"), objectList.count, h("div", { class: "spacer" }), button("+ New", "New object (N)", () => controller.newObject(), "small-button")),
        h("div", { class: "side-row" }, h("span", { class: "muted small" }, "New objects get"), newLabelSelect),
        objectList.el,
        proposal.el,
        candidate.el,
        h("h2", {}, "Latency"),
        latency.el,
        flash.el,
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
    box: (x0, y0, x1, y1) => controller.box(x0, y0, x1, y1),
    changed: ({ view: moved }) => {
      renderer.request(moved, true);
      if (moved) zoomText.textContent = `${Math.round(viewport.scale * 100)} %`;
    },
  });
  toolbar.attach(pointer);
  renderer.scene = () => ({
    bitmap: view.bitmap,
    session: controller.session,
    opacity: view.opacity,
    showMasks: view.showMasks,
    overlay: { queued: controller.queued, extreme: pointer.extreme, stroke: pointer.stroke, box: pointer.box, cursor: pointer.cursor },
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

  function setBrush(direction) {
    const w = pointer.brushWidth;
    pointer.setBrush(direction > 0 ? Math.max(w + 1, w * 1.25) : Math.min(w - 1, w * 0.8));
    brushText.textContent = `${pointer.brushWidth} px`;
  }

  const showFlash = (text) => flash.show(text);

  function toggleHelp(open = !view.helpOpen) {
    view.helpOpen = open;
    help.hidden = !open;
  }

  // ---- Server state -> page ---------------------------------------------------------------
  const controller = new Controller({
    imageId: id,
    taskId,
    ui: {
      status: (info) => {
        status.set(info);
        if (info.state === "denied") {
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
        proposals.apply(s);
        objectList.render(s);
        refresh();
        focusOnce();
      },
      objectChanged: (obj) => {
        proposals.apply(controller.session);
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
      proposalPicked: (obj) => {
        objectList.update(obj);
        refresh();
        showFlash(`Proposal #${obj.id} selected: A accepts it, a click refines it, Delete removes it.`);
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
    const s = controller.session;
    undoBtn.disabled = !s.canStep(s.stepTarget(false), false);
    redoBtn.disabled = !s.canStep(s.stepTarget(true), true);
    candidate.set(obj);
    proposal.set(obj);
    findAll.update();
    renderer.request(true, true);
    hooks();
  }

  function fillLabels() {
    const labels = controller.session.labels;
    const option = (l) => h("option", { value: String(l.id) }, l.name);
    mount(newLabelSelect, h("option", { value: "" }, "no label"), labels.map(option));
    newLabelSelect.value = controller.newLabel && controller.session.labelById.has(controller.newLabel) ? String(controller.newLabel) : "";
  }

  async function save() {
    const reply = await controller.save();
    if (!reply) showFlash("Not saved — see the message above.");
  }

  async function submit() {
    if (!progress.loaded) await progress.load(ctx.signal);
    if (!ctx.alive() || !(await confirmSubmit(progress.left(), taskId))) return;
    await controller.save();
    if (await controller.submit()) progress.load(ctx.signal);
  }

  async function toggleDone() {
    const done = await progress.toggle();
    if (done !== null) showFlash(done ? `Image done · ${progress.el.textContent}` : `Image not done any more · ${progress.el.textContent}`);
  }

  /** A: take the selected proposal as the annotator's own mask (it leaves the review queue). */
  async function acceptProposal() {
    const obj = controller.session.selectedObject;
    if (!isProposal(obj)) {
      showFlash("Select a proposal first: a click inside one selects it (View → Proposals shows them).");
      return;
    }
    try {
      await adoptProposal(obj);
      proposals.apply(controller.session);
      objectList.update(obj);
      refresh();
      showFlash(`Proposal #${obj.id} accepted as your mask.`);
    } catch (error) {
      showError(error, `Proposal #${obj.id} could not be accepted`);
    }
  }

  // ---- Test hooks (annotate/testhooks.js) ----------------------------------------------
  const hooks = () => updateHooks(canvas, controller, { ready: view.bitmap && controller.opened && !view.fatal, fatal: view.fatal });
  const removeTestHooks = installTestHooks({ controller, viewport, stage, renderer });

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
    toggleDone: () => toggleDone(),
    acceptProposal: () => acceptProposal(),
    findAll: () => findAll.focus(),
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
    flash.stop();
    removeTestHooks();
  });

  // ---- Start ------------------------------------------------------------------------------
  setTool("click");
  fillMethods(); // empty and disabled until `opened` lists the methods
  brushText.textContent = `${pointer.brushWidth} px`;
  latency.set(null);
  controller.start();
  progress.load(ctx.signal);
  hooks();
  try {
    const bitmap = await loadBitmap(`/api/images/${id}/file`);
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
