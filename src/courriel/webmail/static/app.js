// courriel webmail: progressive enhancement of server-rendered pages. Every page works
// without this file; with it: keyboard shortcuts, live updates (Server-Sent Events),
// list actions without reloading, upload progress, drafts saved while typing.
// No inline script anywhere (the Content-Security-Policy forbids it); no third-party code.
"use strict";

(function () {
  const body = document.body;
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const DRAFT_EVERY_MS = 5000;

  function post(url, data) {
    return fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "X-Requested-With": "fetch" },
    });
  }

  function status(text) {
    const el = document.getElementById("live-status");
    if (el) el.textContent = text;
  }

  // --- the message list ---------------------------------------------------------------
  function rows() { return Array.from(document.querySelectorAll("#messages .msg")); }
  let selected = -1;

  function select(i) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((r, n) => r.classList.toggle("selected", n === selected));
    all[selected].scrollIntoView({ block: "nearest" });
  }

  // A conversation row stands for its thread (its latest message changes as replies come).
  function rowKey(row) { return row.dataset.thread ? "t:" + row.dataset.thread : "u:" + row.dataset.uid; }

  // The messages a row stands for in an action: its thread, or its message.
  function choose(data, row) {
    if (row.dataset.thread) data.append("thread", row.dataset.thread); else data.append("uid", row.dataset.uid);
  }

  function current() { const all = rows(); return selected >= 0 && selected < all.length ? all[selected] : null; }

  function listUrl(part) {
    if (part === "folders") return "/mail/folders?current=" + encodeURIComponent(body.dataset.mailbox || "");
    const url = new URL(window.location.href);
    url.searchParams.set("partial", part);
    return url.toString();
  }

  async function refresh(part, target) {
    const el = document.getElementById(target);
    if (!el) return;
    const response = await fetch(listUrl(part), { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) return;
    const keep = current() ? rowKey(current()) : null;
    el.innerHTML = await response.text();
    if (part === "list") {
      const all = rows();
      const i = keep ? all.findIndex((r) => rowKey(r) === keep) : -1;
      if (i >= 0) select(i); else selected = -1;
      localDates();
    }
  }

  async function listAction(op, row) {
    if (!row) return;
    const data = new FormData();
    data.set("mailbox", body.dataset.mailbox);
    choose(data, row);
    data.set("op", op);
    const response = await post("/mail/action", data);
    if (response.ok) {
      const answer = await response.json();
      status(answer.notice || "Done");
      await refresh("list", "list");
      await refresh("folders", "folders");
    } else {
      status("Failed: " + response.status);
    }
  }

  // Bulk buttons of the list: fetch instead of a page load.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "list-form") return;
    event.preventDefault();
    const data = new FormData(form);
    if (event.submitter && event.submitter.name) data.set(event.submitter.name, event.submitter.value);
    if (!data.getAll("uid").length && !data.getAll("thread").length) {
      const row = current();
      if (!row) { status("Select messages first"); return; }
      choose(data, row);
    }
    const response = await post("/mail/action", data);
    status(response.ok ? ((await response.json()).notice || "Done") : "Failed: " + response.status);
    await refresh("list", "list");
    await refresh("folders", "folders");
  });

  // --- live updates ---------------------------------------------------------------------
  function live() {
    if (!window.EventSource || !body.dataset.user) return;
    const source = new EventSource("/mail/events");
    source.addEventListener("change", (event) => {
      let touched = [];
      try { touched = JSON.parse(event.data).mailboxes || []; } catch (e) { touched = []; }
      refresh("folders", "folders");
      const shown = Number(body.dataset.mailbox || 0);
      const firstPage = !body.dataset.page || body.dataset.page === "1";
      if (body.classList.contains("page-list") && firstPage && (touched.includes(shown) || touched.includes(0))) {
        refresh("list", "list");
      }
    });
    source.addEventListener("open", () => body.classList.add("live"));
  }

  // --- keyboard shortcuts ---------------------------------------------------------------
  function click(id) { const el = document.getElementById(id); if (el) el.click(); return !!el; }
  function go(id) { const el = document.getElementById(id); if (el && el.href) window.location.href = el.href; }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const t = event.target;
    if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement || (t && t.isContentEditable)) {
      if (event.key === "Escape" && t instanceof HTMLElement) t.blur();
      return;
    }
    const onList = body.classList.contains("page-list");
    const onMessage = body.classList.contains("page-message");
    let done = true;
    switch (event.key) {
      case "j": if (onList) select(selected + 1); else if (onMessage) go("next-link"); else done = false; break;
      case "k": if (onList) select(selected - 1); else if (onMessage) go("prev-link"); else done = false; break;
      case "o": case "Enter":
        if (onList && current()) current().querySelector("a.open").click(); else done = false; break;
      case "u": if (onMessage) go("back-link"); else done = false; break;
      case "r": if (onMessage) go("reply-link"); else done = false; break;
      case "a": if (onMessage) go("reply-all-link"); else done = false; break;
      case "f": if (onMessage) go("forward-link"); else done = false; break;
      case "c": go("compose-link"); break;
      case "/": { const s = document.getElementById("search"); if (s) s.focus(); break; }
      case "#": if (onList) listAction("delete", current()); else if (onMessage) click("delete-button"); else done = false; break;
      case "s":
        if (onList && current()) listAction(current().classList.contains("flagged") ? "unflag" : "flag", current());
        else if (onMessage) click("flag-button"); else done = false;
        break;
      default: done = false;
    }
    if (done) event.preventDefault();
  });

  // --- compose: uploads with progress, drafts while typing ---------------------------------
  function compose() {
    const form = document.getElementById("compose-form");
    if (!form) return;
    const list = document.getElementById("attachment-list");
    const files = document.getElementById("files");
    const draftUid = document.getElementById("draft-uid");
    const draftStatus = document.getElementById("draft-status");
    let dirty = false;
    let saving = false;
    let uploading = 0;

    function chip(id, name, size) {
      const li = document.createElement("li");
      li.dataset.id = id;
      const hidden = document.createElement("input");
      hidden.type = "hidden"; hidden.name = "attachment"; hidden.value = id;
      const label = document.createElement("span");
      label.className = "name"; label.textContent = name;
      const meta = document.createElement("span");
      meta.className = "meta"; meta.textContent = Math.max(1, Math.round(size / 1024)) + " KB";
      const remove = document.createElement("button");
      remove.type = "button"; remove.className = "remove"; remove.dataset.id = id; remove.textContent = "Remove";
      li.append(hidden, label, " ", meta, " ", remove);
      return li;
    }

    function upload(file) {
      const li = document.createElement("li");
      li.className = "uploading";
      const label = document.createElement("span");
      label.className = "name"; label.textContent = file.name;
      const bar = document.createElement("progress");
      bar.max = 100; bar.value = 0;
      li.append(label, bar);
      list.append(li);
      uploading += 1;
      const data = new FormData();
      data.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/mail/upload");
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.setRequestHeader("X-Requested-With", "fetch");
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); });
      xhr.addEventListener("loadend", () => {
        uploading -= 1;
        if (xhr.status === 200) {
          const [item] = JSON.parse(xhr.responseText);
          li.replaceWith(chip(item.id, item.name, item.size));
          dirty = true;
        } else {
          li.textContent = file.name + ": upload failed (" + xhr.status + ")";
          li.className = "error";
        }
      });
      xhr.send(data);
    }

    files.addEventListener("change", () => {
      Array.from(files.files).forEach(upload);
      files.value = "";
    });

    list.addEventListener("click", async (event) => {
      const button = event.target;
      if (!(button instanceof HTMLButtonElement) || !button.classList.contains("remove")) return;
      const data = new FormData();
      data.set("id", button.dataset.id);
      await post("/mail/upload/delete", data);
      const li = button.closest("li");
      if (li) li.remove();
      dirty = true;
    });

    form.addEventListener("input", () => { dirty = true; });
    form.addEventListener("submit", (event) => {
      if (uploading > 0) { event.preventDefault(); draftStatus.textContent = "Wait for the uploads to finish"; }
      dirty = false;
    });

    async function saveDraft() {
      if (!dirty || saving || uploading > 0) return;
      saving = true;
      dirty = false;
      const data = new FormData(form);
      data.delete("files");
      try {
        const response = await post("/mail/draft", data);
        if (response.ok) {
          const answer = await response.json();
          draftUid.value = answer.draft_uid;
          draftStatus.textContent = "Draft saved " + answer.saved;
        } else {
          dirty = true;
          draftStatus.textContent = "Draft not saved (" + response.status + ")";
        }
      } catch (e) {
        dirty = true;
      } finally {
        saving = false;
      }
    }
    window.setInterval(saveDraft, DRAFT_EVERY_MS);
  }

  // --- dates in the reader's time zone ---------------------------------------------------
  function localDates() {
    const today = new Date().toDateString();
    document.querySelectorAll("time[datetime]").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.title = when.toLocaleString();
      if (el.closest(".msg") || el.closest(".conversation")) {
        el.textContent = when.toDateString() === today
          ? when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
          : when.toLocaleDateString();
      }
    });
  }

  function phoneMenu() {
    const menu = document.querySelector(".folder-menu");
    if (menu && window.matchMedia("(max-width: 720px)").matches) menu.open = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    phoneMenu();
    localDates();
    live();
    compose();
  });
})();
