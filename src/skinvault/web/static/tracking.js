// Progress tracking, progressive enhancement only (CSP: no inline scripts):
// - the body map on the upload form picks the site (the select still works without it);
// - the last photo of the chosen site is shown faded beside the camera input as a guide;
// - the aligned comparison: opacity slider (fade) and a swipe divider (drag or slider);
// - "measure again": draw the region and the parts to leave out on the photo; the drawing
//   fills the form's number fields and leave-out lines, which work without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("site");
  const picker = document.querySelector("[data-site-picker]");
  if (select && picker) {
    const ghost = document.getElementById("ghost");
    const ghostBox = document.getElementById("ghost-box");
    const picked = document.getElementById("site-picked");
    const show = () => {
      picker.querySelectorAll(".region").forEach((r) => r.classList.toggle("chosen", r.dataset.site === select.value));
      const option = select.selectedOptions[0];
      if (picked) picked.textContent = select.value && option ? "Chosen: " + option.textContent : "No place chosen yet";
      if (ghost && ghostBox) {
        if (!select.value) { ghostBox.hidden = true; return; }
        const q = picker.dataset.patientQuery || "";
        ghost.onload = () => { ghostBox.hidden = false; };
        ghost.onerror = () => { ghostBox.hidden = true; };
        ghost.src = "/portal/sites/" + encodeURIComponent(select.value) + "/latest.jpg" + q;
      }
    };
    picker.addEventListener("click", (event) => {
      const region = event.target.closest(".region");
      if (!region) return;
      event.preventDefault();
      select.value = region.dataset.site;
      show();
    });
    select.addEventListener("change", show);
    show();
  }
  const overlay = document.getElementById("overlay");
  const top = document.getElementById("overlay-top");
  const amount = document.getElementById("amount");
  const out = document.getElementById("amount-out");
  const divider = document.getElementById("divider");
  if (overlay && top && amount) {
    const apply = () => {
      const v = Number(amount.value);
      if (out) out.textContent = v + " %";
      if (overlay.dataset.mode === "swipe") {
        top.style.opacity = "1";
        top.style.clipPath = "inset(0 0 0 " + v + "%)";
        divider.hidden = false;
        divider.style.left = v + "%";
      } else {
        top.style.clipPath = "none";
        top.style.opacity = String(v / 100);
        divider.hidden = true;
      }
    };
    document.querySelectorAll("input[name=mode]").forEach((radio) => radio.addEventListener("change", () => {
      overlay.dataset.mode = radio.value;
      apply();
    }));
    amount.addEventListener("input", apply);
    const drag = (event) => {
      if (overlay.dataset.mode !== "swipe") return;
      const box = overlay.getBoundingClientRect();
      const x = (event.touches ? event.touches[0].clientX : event.clientX) - box.left;
      amount.value = String(Math.round(Math.max(0, Math.min(1, x / box.width)) * 100));
      apply();
    };
    overlay.addEventListener("pointerdown", (e) => { overlay.setPointerCapture(e.pointerId); drag(e); });
    overlay.addEventListener("pointermove", (e) => { if (e.buttons) drag(e); });
    apply();
  }
  document.querySelectorAll("[data-roi]").forEach(drawRegions);
});

// One photo's drawing area. Boxes are kept in the photo's own pixels (data-width/-height),
// drawn scaled to the shown thumbnail.
function drawRegions(roi) {
  const form = roi.closest("form");
  const img = roi.querySelector("img");
  const fullW = Number(roi.dataset.width), fullH = Number(roi.dataset.height);
  if (!form || !img || !fullW || !fullH) return;
  const field = (k) => form.querySelector("input[name=" + k + "]");
  const leaveOut = form.querySelector("textarea[name=exclude]");
  form.querySelectorAll(".roi-tools").forEach((t) => { t.hidden = false; });
  roi.hidden = false;
  const scale = () => fullW / img.clientWidth;
  const boxes = () => {
    const out = [];
    const r = ["x", "y", "w", "h"].map((k) => Number(field(k).value));
    if (field("w").value && field("h").value && r[2] > 0 && r[3] > 0) out.push(["region", r]);
    for (const line of leaveOut.value.split("\n")) {
      const p = line.split(/[\s,]+/).filter(Boolean).map(Number);
      if (p.length === 4 && p.every(Number.isFinite)) out.push(["leave-out", p]);
    }
    return out;
  };
  const paint = (extra) => {
    roi.querySelectorAll(".roi-box").forEach((b) => b.remove());
    const s = scale();
    for (const [kind, [x, y, w, h]] of extra ? boxes().concat([extra]) : boxes()) {
      const b = document.createElement("div");
      b.className = "roi-box " + kind;
      b.style.left = x / s + "px"; b.style.top = y / s + "px";
      b.style.width = w / s + "px"; b.style.height = h / s + "px";
      roi.appendChild(b);
    }
  };
  const mode = () => (form.querySelector("input[type=radio]:checked") || {}).value || "region";
  const at = (e) => {
    const box = img.getBoundingClientRect();
    const s = scale();
    return [
      Math.round(Math.max(0, Math.min(box.width, e.clientX - box.left)) * s),
      Math.round(Math.max(0, Math.min(box.height, e.clientY - box.top)) * s),
    ];
  };
  let start = null;
  const rect = (e) => {
    const [x, y] = at(e);
    const x0 = Math.min(start[0], x), y0 = Math.min(start[1], y);
    return [Math.min(x0, fullW - 1), Math.min(y0, fullH - 1),
      Math.max(1, Math.abs(x - start[0])), Math.max(1, Math.abs(y - start[1]))];
  };
  roi.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    roi.setPointerCapture(e.pointerId);
    start = at(e);
  });
  roi.addEventListener("pointermove", (e) => { if (start) paint([mode(), rect(e)]); });
  const finish = (e) => {
    if (!start) return;
    const r = rect(e);
    start = null;
    if (r[2] / scale() < 6 || r[3] / scale() < 6) { paint(); return; } // a tap, not a box
    if (mode() === "region") {
      ["x", "y", "w", "h"].forEach((k, i) => { field(k).value = String(r[i]); });
    } else {
      const text = leaveOut.value.replace(/\s+$/, "");
      leaveOut.value = (text ? text + "\n" : "") + r.join(", ");
    }
    paint();
  };
  roi.addEventListener("pointerup", finish);
  roi.addEventListener("pointercancel", () => { start = null; paint(); });
  form.querySelector("[data-roi-clear]").addEventListener("click", () => {
    ["x", "y", "w", "h"].forEach((k) => { field(k).value = ""; });
    leaveOut.value = "";
    paint();
  });
  form.addEventListener("input", () => paint());
  if (img.complete) paint(); else img.addEventListener("load", () => paint());
  window.addEventListener("resize", () => paint());
}
