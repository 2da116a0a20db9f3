// Maskwright browser app: a hash-routed single page app over the REST API.
//   #/                 projects
//   #/projects/{id}    datasets, labels, members, tasks
//   #/datasets/{id}    thumbnails, upload, verify
//   #/images/{id}      the image with its masks
//   #/tasks/{task}/images/{id}   annotate one image of a task (interactive, over ws/annotate/)
//   #/tasks/{task}/images/{id}/objects/{object}   the same, with that object selected (e.g. a mask to fix)
//   #/projects/{id}/jobs        batch jobs: launch MIS proposals / exports, live progress
//   #/projects/{id}/models      trained models: figures, default per method, checkpoint upload
//   #/projects/{id}/review      the review queue of pseudo labels (reviewers, managers, owners)

import { showError } from "./dom.js";
import { Router } from "./router.js";
import { annotateView } from "./views/annotate.js";
import { datasetView } from "./views/dataset.js";
import { imageView } from "./views/image.js";
import { jobsView } from "./views/jobs.js";
import { modelsView } from "./views/models.js";
import { projectView } from "./views/project.js";
import { projectsView } from "./views/projects.js";
import { reviewView } from "./views/review.js";

// Nothing fails silently: a rejected promise nobody handled still reaches the banner.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason?.name === "AbortError") return;
  showError(event.reason);
});
window.addEventListener("error", (event) => {
  if (event.error) showError(event.error);
});

const root = document.getElementById("app");
const router = new Router(root)
  .add("/", projectsView, "projects")
  .add("/projects/:id", projectView, "project")
  .add("/datasets/:id", datasetView, "dataset")
  .add("/images/:id", imageView, "image")
  .add("/tasks/:task/images/:id", annotateView, "annotate")
  .add("/tasks/:task/images/:id/objects/:object", annotateView, "annotate")
  .add("/projects/:id/review", reviewView, "review")
  .add("/projects/:id/jobs", jobsView, "jobs")
  .add("/projects/:id/models", modelsView, "models");
router.start();
