// Progress tracking, progressive enhancement only (CSP: no inline scripts):
// - the body map on the upload form picks the site (the select still works without it);
// - the last photo of the chosen site is shown faded beside the camera input as a guide;
// - the aligned comparison: opacity slider (fade) and a swipe divider (drag or slider).
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
});
