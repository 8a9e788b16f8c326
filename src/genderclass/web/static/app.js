"use strict";

// genderclass upload page: sends each file to POST /api/v1/predict and draws the answer.
(function () {
  const API = "/api/v1";
  const MAX_PARALLEL = 2;
  const SMALL_GROUP = 30;  // as the report and the card: below this a group's accuracy is uncertain
  const MULTIPART_OVERHEAD = 1024;  // bytes of form framing around one file (boundary, headers, fields)
  const COLORS = { female: "#8a3ab9", male: "#0f7b6c", uncertain: "#6b7280" };

  const els = {
    form: document.getElementById("options"),
    input: document.getElementById("file-input"),
    dropzone: document.getElementById("dropzone"),
    detect: document.getElementById("detect"),
    finger: document.getElementById("finger"),
    fuse: document.getElementById("fuse"),
    personRow: document.getElementById("person-row"),
    fingerRow: document.getElementById("finger-row"),
    face: document.getElementById("modality-face"),
    fingerprint: document.getElementById("modality-fingerprint"),
    fingerprintLabel: document.getElementById("fingerprint-label"),
    modelLine: document.getElementById("model-line"),
    cardLink: document.getElementById("card-link"),
    groups: document.getElementById("groups"),
    groupTables: document.getElementById("group-tables"),
    limitsText: document.getElementById("limits-text"),
    results: document.getElementById("results"),
    empty: document.getElementById("empty"),
    clear: document.getElementById("clear"),
    template: document.getElementById("card-template"),
  };

  const state = { models: {}, limits: null, queue: [], active: 0 };

  // ------------------------------------------------------------------ models
  function pct(x) {
    return (100 * x).toFixed(1) + "%";
  }

  function currentModality() {
    return els.fingerprint.checked ? "fingerprint" : "face";
  }

  function describeModel() {
    const modality = currentModality();
    const entry = state.models[modality];
    els.modelLine.classList.remove("is-error");
    els.modelLine.textContent = "";
    if (!entry || !entry.info) {
      els.modelLine.classList.add("is-error");
      els.modelLine.textContent = "No " + modality + " model is available on this server.";
      return;
    }
    const info = entry.info;
    const parts = [document.createTextNode("Model: ")];
    const name = document.createElement("strong");
    const architecture = info.architecture_summary || info.architecture;
    name.textContent = (info.name || modality) + (architecture ? " (" + architecture + ")" : "");
    parts.push(name);
    let tail;
    if (modality === "fingerprint") {
      // 4 in 5 prints are male: plain accuracy would flatter a model that always answers "male"
      tail = " · test balanced accuracy per print ";
      tail += typeof info.test_balanced_accuracy === "number" ? pct(info.test_balanced_accuracy) : "not recorded";
      if (typeof info.test_per_person_balanced_accuracy === "number") {
        tail += ", per person (all prints fused) " + pct(info.test_per_person_balanced_accuracy);
      }
    } else {
      tail = " · test accuracy ";
      tail += typeof info.test_accuracy === "number" ? pct(info.test_accuracy) : "not recorded";
      if (typeof info.test_balanced_accuracy === "number") {
        tail += " (balanced " + pct(info.test_balanced_accuracy) + ")";
      }
    }
    parts.push(document.createTextNode(tail));
    els.modelLine.replaceChildren(...parts);
    els.cardLink.href = "/model-card/" + modality;
    describeGroups(info, modality);
  }

  // Test accuracy of each group (age band, race label; finger, hand): where the model fails whom.
  function describeGroups(info, modality) {
    const groups = info.test_groups || {};
    const attributes = Object.keys(groups).filter((a) => groups[a].length);
    els.groups.hidden = !attributes.length;
    // prints are 4 in 5 male: balanced accuracy, as in the model line
    const key = modality === "fingerprint" ? "balanced_accuracy" : "accuracy";
    const tables = attributes.map((attribute) => {
      const table = document.createElement("table");
      table.createCaption().textContent = attribute.replace(/_/g, " ");
      const head = table.createTHead().insertRow();
      for (const title of ["group", "n", key === "accuracy" ? "accuracy" : "balanced acc."]) {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = title;
        head.appendChild(th);
      }
      const body = table.createTBody();
      for (const row of groups[attribute]) {
        const tr = body.insertRow();
        if ((row.n || 0) < SMALL_GROUP) tr.className = "small";
        tr.insertCell().textContent = row.group;
        const n = tr.insertCell();
        n.className = "num";
        n.textContent = row.n;
        const value = tr.insertCell();
        value.className = "num";
        value.textContent = typeof row[key] === "number" ? pct(row[key]) : "–";
      }
      return table;
    });
    const note = document.createElement("p");
    note.textContent = "Italic: fewer than " + SMALL_GROUP + " test images, a wide margin of error. Intervals and more in the model card.";
    els.groupTables.replaceChildren(...tables, note);
  }

  function applyModality() {
    const isFace = currentModality() === "face";
    els.detect.disabled = !isFace;
    // the finger choice: fingerprint models that carry per-finger offsets list their fingers
    const entry = state.models.fingerprint;
    const fingers = (entry && entry.info && entry.info.fingers) || [];
    if (els.finger.options.length !== fingers.length + 1) {
      els.finger.replaceChildren(new Option("Not known", ""), ...fingers.map((f) => new Option(f, f)));
    }
    els.fingerRow.hidden = isFace || !fingers.length;
    els.personRow.hidden = isFace;
    describeModel();
  }

  async function loadModels() {
    try {
      const response = await fetch(API + "/models", { headers: { Accept: "application/json" } });
      const data = await response.json();
      if (!response.ok) throw new Error(errorMessage(data, response));
      for (const entry of data.models) state.models[entry.modality] = entry;
      state.limits = data.limits;
      if (state.models.fingerprint) {
        els.fingerprint.disabled = false;
        els.fingerprintLabel.hidden = false;
      }
      if (!state.models.face && state.models.fingerprint) {
        els.fingerprint.checked = true;
        els.face.disabled = true;
      }
      if (state.limits) {
        const mb = state.limits.max_upload_bytes / 1024 / 1024;
        els.limitsText.textContent = "up to " + (Math.round(mb * 10) / 10) + " MiB per request (a person's prints together)";
      }
      applyModality();
    } catch (err) {
      els.modelLine.classList.add("is-error");
      els.modelLine.textContent = "Could not load model information: " + err.message;
    }
  }

  // ------------------------------------------------------------------ cards
  function newCard(file) {
    const card = els.template.content.firstElementChild.cloneNode(true);
    const title = card.querySelector(".card-title");
    title.textContent = file.name || "image";
    title.title = file.name || "";
    setBadge(card, "Analysing", "");
    const message = card.querySelector(".message");
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    message.replaceChildren(spinner, document.createTextNode("Analysing…"));
    els.results.appendChild(card);
    els.empty.hidden = true;
    els.clear.hidden = false;
    return card;
  }

  function setBadge(card, text, kind) {
    const badge = card.querySelector(".badge");
    badge.textContent = text;
    badge.className = "badge" + (kind ? " is-" + kind : "");
  }

  function showError(card, message) {
    card.classList.add("is-error");
    card.setAttribute("aria-label", card.querySelector(".card-title").textContent + ": error");
    setBadge(card, "Error", "error");
    card.querySelector(".message").textContent = message;
    card.querySelector(".preview").hidden = true;
  }

  function faceRow(face, index, threshold) {
    const li = document.createElement("li");
    li.className = "face-row";
    const top = document.createElement("div");
    top.className = "face-top";
    const label = document.createElement("span");
    label.className = "face-label " + face.label;
    const num = document.createElement("span");
    num.className = "num";
    num.textContent = String(index + 1);
    label.append(num, document.createTextNode(face.label));
    const meta = document.createElement("span");
    meta.className = "face-meta";
    meta.textContent = "p(female) " + face.p_female.toFixed(2) + " · confidence " + pct(face.confidence);
    if (face.finger) meta.textContent += " · " + face.finger + " calibration";
    top.append(label, meta);

    const bar = document.createElement("div");
    bar.className = "bar " + face.label;
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", "probability of the label female: " + pct(face.p_female));
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    fill.style.width = pct(face.p_female);
    const mid = document.createElement("div");
    mid.className = "bar-mid";  // the model's decision threshold (0.5 unless chosen on validation)
    mid.style.left = pct(threshold);
    mid.title = "decision threshold p(female) = " + threshold.toFixed(2);
    bar.append(fill, mid);

    const scale = document.createElement("div");
    scale.className = "bar-scale";
    scale.setAttribute("aria-hidden", "true");
    const left = document.createElement("span");
    left.textContent = "male 0";
    const right = document.createElement("span");
    right.textContent = "1 female";
    scale.append(left, right);

    li.append(top, bar, scale);
    return li;
  }

  function showResult(card, result, modality) {
    const faces = result.faces || [];
    const message = card.querySelector(".message");
    const list = card.querySelector(".faces");
    message.textContent = "";
    if (result.error) {
      showError(card, result.error);
      return;
    }
    if (faces.length === 0) {
      card.classList.add("is-empty");
      setBadge(card, "No face found", "warn");
      message.textContent =
        "No face was found. If the image is already a cropped face, uncheck “Detect faces” and try again.";
    } else {
      const uncertain = faces.filter((f) => f.label === "uncertain").length;
      const noun = modality === "face" ? (faces.length === 1 ? "face" : "faces") : "image";
      if (uncertain === faces.length) {
        card.classList.add("is-uncertain");
        setBadge(card, "Uncertain", "warn");
        message.textContent =
          "The model is not confident enough to give a label (confidence below the model's minimum).";
      } else {
        setBadge(card, modality === "face" ? faces.length + " " + noun : "Classified", "ok");
        if (uncertain) message.textContent = uncertain + " of " + faces.length + " faces: uncertain.";
      }
      const info = (state.models[modality] && state.models[modality].info) || {};
      const plain = typeof info.threshold === "number" ? info.threshold : 0.5;
      // a print classified with its finger known is decided at the per-finger calibration's threshold
      const thresholdOf = (face) => (face.finger && typeof info.finger_threshold === "number" ? info.finger_threshold : plain);
      faces.forEach((face, i) => list.appendChild(faceRow(face, i, thresholdOf(face))));
    }
    const summary = faces.length
      ? faces.map((f, i) => "face " + (i + 1) + " " + f.label + ", p(female) " + f.p_female.toFixed(2)).join("; ")
      : "no face found";
    card.setAttribute("aria-label", card.querySelector(".card-title").textContent + ": " + summary);
  }

  // ------------------------------------------------------------------ canvas
  function loadBitmap(file) {
    return new Promise((resolve) => {
      const url = URL.createObjectURL(file);
      const img = new Image();
      img.onload = () => resolve({ img, url });
      img.onerror = () => {
        URL.revokeObjectURL(url);
        resolve(null);
      };
      img.src = url;
    });
  }

  async function drawPreview(card, file, result, modality) {
    const canvas = card.querySelector("canvas");
    const loaded = await loadBitmap(file);
    let width, height;
    if (loaded) {
      width = loaded.img.naturalWidth;
      height = loaded.img.naturalHeight;
    } else if (result.image_size) {
      [width, height] = result.image_size;
    } else {
      card.querySelector(".preview").hidden = true;
      return;
    }
    // Boxes are in the server's (EXIF-rotated) pixels; browsers also draw images EXIF-rotated.
    const [srcW, srcH] = result.image_size || [width, height];
    const scale = Math.min(1, 900 / Math.max(width, height));
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    const ctx = canvas.getContext("2d");
    if (loaded) {
      ctx.drawImage(loaded.img, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(loaded.url);
    } else {
      ctx.fillStyle = "#e5e7eb";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.fillStyle = "#4b5563";
      ctx.font = Math.max(12, canvas.width / 30) + "px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText("Preview not supported by this browser", canvas.width / 2, canvas.height / 2);
    }
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", "Preview of " + (file.name || "the image") + " with detected faces outlined");
    const sx = canvas.width / srcW;
    const sy = canvas.height / srcH;
    // Line and label sizes in on-screen pixels, whatever the canvas is scaled to by CSS.
    const shown = canvas.getBoundingClientRect().width || canvas.width;
    const k = canvas.width / Math.max(1, shown);
    const line = Math.max(1, 2.5 * k);
    const fontSize = Math.max(8, Math.round(12 * k));
    (result.faces || []).forEach((face, i) => {
      if (modality !== "face") return;
      const [x1, y1, x2, y2] = face.box;
      const color = COLORS[face.label] || "#f59e0b";
      ctx.lineWidth = line;
      ctx.strokeStyle = color;
      ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
      const text = String(i + 1);
      ctx.font = "700 " + fontSize + "px system-ui, sans-serif";
      const tw = ctx.measureText(text).width + fontSize * 0.6;
      const th = fontSize * 1.35;
      const tx = Math.max(0, x1 * sx - line / 2);
      const ty = y1 * sy - th >= 0 ? y1 * sy - th : y1 * sy;
      ctx.fillStyle = color;
      ctx.fillRect(tx, ty, tw, th);
      ctx.fillStyle = "#fff";
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText(text, tx + fontSize * 0.3, ty + th / 2);
    });
  }

  // ------------------------------------------------------------------ requests
  function errorMessage(data, response) {
    if (data && data.error && data.error.message) return data.error.message;
    return "The server answered " + response.status + " " + (response.statusText || "");
  }

  async function classify(file, card, options) {
    const body = new FormData();
    body.append("file", file, file.name || "image");
    body.append("modality", options.modality);
    body.append("detect", options.detect ? "true" : "false");
    if (options.finger) body.append("finger", options.finger);
    let response, data;
    try {
      response = await fetch(API + "/predict", { method: "POST", body, headers: { Accept: "application/json" } });
    } catch (err) {
      showError(card, "Could not reach the server (" + err.message + ").");
      return;
    }
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok || !data || !Array.isArray(data.results)) {
      showError(card, errorMessage(data, response));
      return;
    }
    const result = data.results[0];
    showResult(card, result, options.modality);
    if (!result.error) await drawPreview(card, file, result, options.modality);
  }

  // One request for a person's prints: each print gets its card, the person a card of its own.
  async function classifyPerson(jobs, personCard, options) {
    const body = new FormData();
    for (const job of jobs) body.append("file", job.file, job.file.name || "image");
    body.append("modality", options.modality);
    body.append("fuse", "true");
    if (options.finger) body.append("finger", options.finger);
    let response, data;
    try {
      response = await fetch(API + "/predict", { method: "POST", body, headers: { Accept: "application/json" } });
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response || !response.ok || !data || !Array.isArray(data.results)) {
      const message = data ? errorMessage(data, response) : "Could not reach the server.";
      for (const card of [personCard, ...jobs.map((job) => job.card)]) showError(card, message);
      return;
    }
    await Promise.all(
      jobs.map(async (job, i) => {
        const result = data.results[i];
        showResult(job.card, result, options.modality);
        if (!result.error) await drawPreview(job.card, job.file, result, options.modality);
      })
    );
    const person = data.person;
    if (!person) {
      showError(personCard, "None of the prints could be classified, so there is no answer for the person.");
      return;
    }
    personCard.querySelector(".preview").hidden = true;
    const info = (state.models.fingerprint && state.models.fingerprint.info) || {};
    const plain = typeof info.threshold === "number" ? info.threshold : 0.5;
    // every print's finger named (one finger for the whole upload): the person is decided at the
    // per-finger calibration's threshold, as each print is
    const threshold = options.finger && typeof info.finger_threshold === "number" ? info.finger_threshold : plain;
    const row = faceRow(person, 0, threshold);
    personCard.querySelector(".faces").appendChild(row);
    const uncertain = person.label === "uncertain";
    setBadge(personCard, uncertain ? "Uncertain" : "Person", uncertain ? "warn" : "ok");
    personCard.querySelector(".message").textContent =
      "Fused " + person.n + " distinct print" + (person.n === 1 ? "" : "s") + " (mean of their scores).";
    personCard.setAttribute("aria-label", "One person, " + prints(person.n) + ": " + person.label);
  }

  function prints(n) {
    return n + (n === 1 ? " print" : " prints");
  }

  function pump() {
    while (state.active < MAX_PARALLEL && state.queue.length) {
      const job = state.queue.shift();
      state.active += 1;
      els.results.setAttribute("aria-busy", "true");
      classify(job.file, job.card, job.options).finally(() => {
        state.active -= 1;
        if (!state.active && !state.queue.length) els.results.removeAttribute("aria-busy");
        pump();
      });
    }
  }

  function handleFiles(fileList) {
    const files = Array.from(fileList || []);
    if (!files.length) return;
    const options = { modality: currentModality(), detect: els.detect.checked };
    if (options.modality === "fingerprint" && !els.fingerRow.hidden) options.finger = els.finger.value;
    const asPerson = options.modality === "fingerprint" && els.fuse.checked;
    const personCard = asPerson ? newCard({ name: "One person (" + prints(files.length) + ")" }) : null;
    // the limit is on the request body: leave room for the multipart framing around the file
    const limit = state.limits ? state.limits.max_upload_bytes - MULTIPART_OVERHEAD : null;
    const jobs = [];
    for (const file of files) {
      const card = newCard(file);
      if (limit && file.size > limit) {
        const mb = Math.round((limit / 1024 / 1024) * 10) / 10;
        showError(card, "This file is over the " + mb + " MiB upload limit.");
        continue;
      }
      jobs.push({ file, card, options });
    }
    if (!asPerson) {
      state.queue.push(...jobs);
      pump();
      return;
    }
    const maxFiles = state.limits ? state.limits.max_files : null;
    const total = jobs.reduce((sum, job) => sum + job.file.size + MULTIPART_OVERHEAD, 0);
    const tooBig = limit && total > limit + MULTIPART_OVERHEAD;
    if (!jobs.length || (maxFiles && jobs.length > maxFiles) || tooBig) {
      const mb = limit ? Math.round((state.limits.max_upload_bytes / 1024 / 1024) * 10) / 10 : 0;
      const message = !jobs.length
        ? "No print to fuse."
        : tooBig
          ? "These prints are over the " + mb + " MiB limit together; send fewer or smaller files."
          : "A person is at most " + maxFiles + " prints at once.";
      for (const card of [personCard, ...jobs.map((job) => job.card)]) showError(card, message);
      return;
    }
    classifyPerson(jobs, personCard, options);
  }

  // ------------------------------------------------------------------ events
  els.form.addEventListener("submit", (event) => event.preventDefault());
  els.form.addEventListener("change", (event) => {
    if (event.target.name === "modality") applyModality();
  });
  els.dropzone.addEventListener("click", () => els.input.click());
  els.input.addEventListener("change", () => {
    handleFiles(els.input.files);
    els.input.value = "";
  });
  ["dragenter", "dragover"].forEach((type) =>
    els.dropzone.addEventListener(type, (event) => {
      event.preventDefault();
      els.dropzone.classList.add("is-dragover");
    })
  );
  ["dragleave", "dragend", "drop"].forEach((type) =>
    els.dropzone.addEventListener(type, () => els.dropzone.classList.remove("is-dragover"))
  );
  els.dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    handleFiles(event.dataTransfer && event.dataTransfer.files);
  });
  // A file dropped next to the zone must not make the browser navigate away.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  els.clear.addEventListener("click", () => {
    els.results.replaceChildren();
    els.empty.hidden = false;
    els.clear.hidden = true;
    els.dropzone.focus();
  });

  loadModels();
})();
