// The upload preview (progressive enhancement). Without this script the form posts the
// file to /portal/upload as before and the saved photo's page lists what was removed.
// With it: the file goes up once (with a progress bar) to /portal/preview, which keeps
// the scrubbed photo as a draft; the preview shows the photo with its face and text
// boxes, lets the person cover boxes (tick, drag, or type numbers) and crop, and the
// save sends only the draft id, the covers and the crop.
"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";

  function addStylesheet() {
    if (document.querySelector('link[href="/static/preview.css"]')) return;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/preview.css";
    document.head.appendChild(link);
  }

  function rectOf(el) {
    return ["x", "y", "width", "height"].map((a) => Math.round(Number(el.getAttribute(a))));
  }

  function svgRect(svg, box, cls) {
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("class", cls);
    ["x", "y", "width", "height"].forEach((a, i) => r.setAttribute(a, String(box[i])));
    r.setAttribute("stroke-width", svg.dataset.stroke || "4");
    svg.appendChild(r);
    return r;
  }

  function setupPreview(root, form) {
    const svg = root.querySelector("[data-overlay]");
    if (!svg) return;
    const stage = svg.parentElement;
    const width = Number(root.dataset.width), height = Number(root.dataset.height);
    svg.dataset.stroke = String(Math.max(2, Math.round(Math.max(width, height) / 320)));
    const drawnList = root.querySelector("[data-drawn]");
    let drawnCount = 0;

    // Detector boxes: the checkbox is the truth, the rectangle shows it.
    root.querySelectorAll("input[type=checkbox][data-box]").forEach((box) => {
      const rect = svg.querySelector(`rect[data-box="${box.dataset.box}"]`);
      const show = () => rect && rect.classList.toggle("covered", box.checked);
      box.addEventListener("change", show);
      show();
      if (rect) rect.addEventListener("click", () => { if (tool() === "none") { box.checked = !box.checked; show(); } });
    });

    function addCover(box) {
      const [x, y, w, h] = box;
      if (!(w > 0 && h > 0)) return;
      const n = drawnCount++;
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = `cover_d${String(n).padStart(3, "0")}`;
      input.value = box.join(",");
      const rect = svgRect(svg, box, "box drawn covered");
      const item = document.createElement("li");
      item.textContent = `Your cover ${n + 1} at ${x},${y} (${w}×${h} px) `;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "secondary";
      remove.textContent = `Remove cover ${n + 1}`;
      remove.addEventListener("click", () => { input.remove(); rect.remove(); item.remove(); });
      item.append(remove, input);
      drawnList.appendChild(item);
    }

    // Crop: the four number inputs are the truth; the outline and shading show them.
    const cropInputs = ["x", "y", "w", "h"].map((k) => root.querySelector(`#crop_${k}`));
    const clearCrop = root.querySelector("[data-clear-crop]");
    let cropShapes = [];
    function showCrop() {
      cropShapes.forEach((s) => s.remove());
      cropShapes = [];
      const [x, y, w, h] = cropInputs.map((i) => Number(i.value));
      const set = cropInputs.every((i) => i.value !== "") && w > 0 && h > 0;
      clearCrop.hidden = !set;
      if (!set) return;
      for (const shade of [[0, 0, width, y], [0, y + h, width, height - y - h], [0, y, x, h], [x + w, y, width - x - w, h]]) {
        if (shade[2] > 0 && shade[3] > 0) cropShapes.push(svgRect(svg, shade, "shade"));
      }
      cropShapes.push(svgRect(svg, [x, y, w, h], "crop"));
    }
    cropInputs.forEach((i) => i.addEventListener("input", showCrop));
    clearCrop.addEventListener("click", () => { cropInputs.forEach((i) => { i.value = ""; }); showCrop(); });

    // Typed cover: the button adds it to the list (the server also takes it if typed and not added).
    const addInputs = ["x", "y", "w", "h"].map((k) => root.querySelector(`#add_${k}`));
    const addButton = root.querySelector("[data-add-cover]");
    addButton.hidden = false;
    addButton.addEventListener("click", () => {
      const box = addInputs.map((i) => Math.round(Number(i.value)));
      if (addInputs.some((i) => i.value === "") || box[2] <= 0 || box[3] <= 0) return;
      addCover(box);
      addInputs.forEach((i) => { i.value = ""; });
    });

    // Drawing with a pointer (mouse, pen, touch).
    const tools = root.querySelectorAll("[data-tool]");
    const tool = () => (root.querySelector("[data-tool]:checked") || { value: "none" }).value;
    const syncTool = () => stage.classList.toggle("drawing", tool() !== "none");
    tools.forEach((t) => t.addEventListener("change", syncTool));
    syncTool();
    function point(event) {
      const m = svg.getScreenCTM();
      if (!m) return [0, 0];
      const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(m.inverse());
      return [Math.min(width, Math.max(0, p.x)), Math.min(height, Math.max(0, p.y))];
    }
    let start = null, sketch = null;
    svg.addEventListener("pointerdown", (event) => {
      if (tool() === "none") return;
      event.preventDefault();
      svg.setPointerCapture(event.pointerId);
      start = point(event);
      sketch = svgRect(svg, [start[0], start[1], 0, 0], "sketch");
    });
    svg.addEventListener("pointermove", (event) => {
      if (!start || !sketch) return;
      const [x, y] = point(event);
      sketch.setAttribute("x", String(Math.min(x, start[0])));
      sketch.setAttribute("y", String(Math.min(y, start[1])));
      sketch.setAttribute("width", String(Math.abs(x - start[0])));
      sketch.setAttribute("height", String(Math.abs(y - start[1])));
    });
    const finish = () => {
      if (!start || !sketch) return;
      const box = rectOf(sketch);
      sketch.remove();
      start = sketch = null;
      if (box[2] < 4 || box[3] < 4) return; // a tap, not a drag
      if (tool() === "crop") {
        cropInputs.forEach((i, k) => { i.value = String(box[k]); });
        showCrop();
      } else {
        addCover(box);
      }
    };
    svg.addEventListener("pointerup", finish);
    svg.addEventListener("pointercancel", finish);
  }

  function startPreview(form, input, target) {
    const file = input.files && input.files[0];
    if (!file) return;
    input.disabled = false;
    const status = document.createElement("p");
    status.setAttribute("role", "status");
    status.textContent = "Sending the photo…";
    const bar = document.createElement("progress");
    bar.className = "upload-progress";
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload progress");
    target.replaceChildren(status, bar);
    const data = new FormData();
    data.append("csrf", form.elements.csrf.value);
    data.append("patient_id", form.elements.patient_id ? form.elements.patient_id.value : "");
    data.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/portal/preview");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
    });
    xhr.upload.addEventListener("load", () => {
      bar.removeAttribute("value"); // indeterminate while the server looks
      status.textContent = "Looking for faces and text…";
    });
    xhr.addEventListener("load", () => {
      const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const found = doc.querySelector("[data-preview]");
      if (!found) {
        target.textContent = "The preview is not available; you can still save the photo.";
        return;
      }
      const root = document.importNode(found, true);
      target.replaceChildren(root);
      if (root.dataset.draft) {
        // The photo is on the server now: the save sends the draft id, never the file again.
        input.disabled = true;
        input.required = false;
        const again = document.createElement("button");
        again.type = "button";
        again.className = "secondary";
        again.textContent = "Choose another photo";
        again.addEventListener("click", () => {
          input.disabled = false;
          input.required = true;
          input.value = "";
          target.replaceChildren();
          input.focus();
        });
        root.prepend(again);
        setupPreview(root, form);
      }
    });
    xhr.addEventListener("error", () => {
      target.textContent = "The preview is not available; you can still save the photo.";
    });
    xhr.send(data);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("upload");
    const input = document.getElementById("file");
    const target = document.getElementById("preview");
    if (!form || !input || !target) return;
    addStylesheet();
    input.addEventListener("change", () => startPreview(form, input, target));
  });
})();
