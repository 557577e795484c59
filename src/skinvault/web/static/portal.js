// Progressive enhancement only: the privacy preview before an upload is saved.
// Without this script the upload still works, and the saved photo's page lists what was removed.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  const input = document.getElementById("file");
  const target = document.getElementById("preview");
  if (!form || !input || !target) return;
  input.addEventListener("change", async () => {
    target.textContent = "Checking the photo for hidden details…";
    const data = new FormData();
    data.append("csrf", form.elements.csrf.value);
    data.append("file", input.files[0]);
    try {
      const response = await fetch("/portal/preview", { method: "POST", body: data, credentials: "same-origin" });
      const html = await response.text();
      const doc = new DOMParser().parseFromString(html, "text/html");
      const found = doc.querySelector("[data-preview]");
      target.replaceChildren(found ? document.importNode(found, true) : document.createTextNode("The preview is not available."));
    } catch (error) {
      target.textContent = "The preview is not available; you can still save the photo.";
    }
  });
});
