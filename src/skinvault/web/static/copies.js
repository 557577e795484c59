// The patient's own copies (progressive enhancement; every form also works without it).
// - Check a copy: the chosen file is hashed here with Web Crypto (SubtleCrypto.digest) and
//   only its SHA-256 is sent; without Web Crypto (an old browser, or a page not served over
//   HTTPS) the form sends the file, which the server hashes and drops.
// - Archive and public copy: the download is fetched with a progress bar, then saved.
"use strict";
(() => {
  function hex(buffer) {
    return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function fileName(response, fallback) {
    const found = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
    return found ? found[1] : fallback;
  }

  function megabytes(n) {
    return (n / 1048576).toFixed(1) + " MB";
  }

  async function errorOf(response) {
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const said = doc.querySelector("[role=alert], .error, main [role=status]");
    return said ? said.textContent.trim() : `That did not work (${response.status}).`;
  }

  function save(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.hidden = true;
    document.body.appendChild(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(url); link.remove(); }, 60000);
  }

  // Read the answer with a progress bar (Content-Length known: determinate).
  async function readWithProgress(response, bar, text, label) {
    const total = Number(response.headers.get("content-length")) || 0;
    if (!response.body || !total) return response.blob();
    bar.max = total;
    bar.value = 0;
    const reader = response.body.getReader();
    const parts = [];
    let got = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      got += value.length;
      bar.value = got;
      text.textContent = `${label}: ${megabytes(got)} of ${megabytes(total)}`;
    }
    return new Blob(parts, { type: response.headers.get("content-type") || "" });
  }

  function setupCheckCopy(form) {
    const input = form.querySelector("input[type=file]");
    const digest = form.querySelector("input[name=sha256]");
    const status = form.querySelector("#hash-status");
    if (!input || !digest || !(window.crypto && window.crypto.subtle)) return;
    window.addEventListener("pageshow", () => { input.disabled = false; digest.value = ""; });
    form.addEventListener("submit", async (event) => {
      const file = input.files && input.files[0];
      if (!file) return;
      event.preventDefault();
      status.textContent = "Working out the fingerprint on this device…";
      try {
        digest.value = hex(await window.crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
      } catch (problem) {
        status.textContent = "This device could not work out the fingerprint; the file will be sent instead.";
        digest.value = "";
        form.submit();
        return;
      }
      input.disabled = true; // a disabled field is not sent: only the fingerprint goes
      status.textContent = "Comparing the fingerprint with your record…";
      form.submit();
    });
  }

  function setupDownload(form, box, label, check) {
    const bar = box.querySelector("[data-progress-bar]");
    const text = box.querySelector("[data-progress-text]");
    const button = form.querySelector("button[type=submit]");
    form.addEventListener("submit", async (event) => {
      const problem = check ? check() : "";
      if (problem) {
        event.preventDefault();
        box.hidden = false;
        bar.hidden = true;
        text.textContent = problem;
        return;
      }
      event.preventDefault();
      box.hidden = false;
      bar.hidden = false;
      bar.removeAttribute("value"); // indeterminate while the server works
      text.textContent = form.dataset.workingText || "Working…";
      button.disabled = true;
      try {
        const multipart = form.enctype === "multipart/form-data";
        const body = multipart ? new FormData(form) : new URLSearchParams(new FormData(form));
        const response = await fetch(form.action, { method: "POST", body, credentials: "same-origin" });
        const type = response.headers.get("content-type") || "";
        if (!response.ok || type.startsWith("text/html")) {
          bar.hidden = true;
          text.textContent = await errorOf(response);
          return;
        }
        const blob = await readWithProgress(response, bar, text, label);
        const name = fileName(response, "download");
        save(blob, name);
        const covered = response.headers.get("x-public-copy-covered");
        text.textContent = covered === null
          ? `Downloaded ${name} (${megabytes(blob.size)}).`
          : `Downloaded ${name}: ${covered} area(s) covered. Look at it before you post it.`;
        bar.value = bar.max = 1;
        text.dataset.done = name;
      } catch (failure) {
        bar.hidden = true;
        text.textContent = "The download did not finish; please try again.";
      } finally {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const check = document.querySelector("form[data-hash-in-browser]");
    if (check) setupCheckCopy(check);
    const archive = document.querySelector("form[data-download-progress]");
    const archiveBox = document.getElementById("archive-progress");
    if (archive && archiveBox) {
      archive.dataset.workingText = "Gathering and encrypting your photos, notes and history…";
      setupDownload(archive, archiveBox, "Downloading the archive", () => {
        const [one, two] = [archive.elements.passphrase.value, archive.elements.passphrase_again.value];
        return one === two ? "" : "The two passphrases are not the same.";
      });
    }
    const pc = document.querySelector("form[data-public-copy]");
    const pcBox = document.getElementById("public-copy-progress");
    if (pc && pcBox) {
      pc.dataset.workingText = "Removing hidden details, looking for faces and text, covering them…";
      setupDownload(pc, pcBox, "Downloading the public copy", null);
    }
  });
})();
