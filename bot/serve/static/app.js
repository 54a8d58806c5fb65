// The page of `bot serve`. Every text from an article or a model is put in with textContent or
// as a text node, never parsed as HTML, so an article holding markup shows it and runs nothing.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { history: [], articles: new Map(), busy: false };
const MAX_HISTORY = 6; // turns sent back with a follow-up (the server keeps at most this many)

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = sessionStorage.getItem("bot-token");
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function api(path, body) {
  const init = body === undefined ? { headers: headers() }
    : { method: "POST", headers: headers(), body: JSON.stringify(body) };
  const response = await fetch(path, init);
  if (response.status === 401) askForToken();
  const data = await response.json();
  if (!response.ok) throw new Error(data.error + (data.hint ? " (" + data.hint + ")" : ""));
  return data;
}

function askForToken() {
  $("token-form").hidden = false;
  $("token").focus();
}

// --- streamed answers -----------------------------------------------------------------------

async function streamAnswer(body, onToken) {
  const response = await fetch("/api/ask/stream", {
    method: "POST", headers: headers(), body: JSON.stringify(body),
  });
  if (!response.ok) {
    if (response.status === 401) askForToken();
    const data = await response.json();
    throw new Error(data.error + (data.hint ? " (" + data.hint + ")" : ""));
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block);
      const data = /^data: (.*)$/m.exec(block);
      if (!event || !data) continue;
      const payload = JSON.parse(data[1]);
      if (event[1] === "token") onToken(payload.text);
      else if (event[1] === "result") return payload;
      else if (event[1] === "error") throw new Error(payload.error + (payload.hint ? " (" + payload.hint + ")" : ""));
    }
  }
  throw new Error("the answer stopped before it was complete");
}

function filters(prefix) {
  const value = (id) => $(prefix + "-" + id).value.trim() || null;
  return { source: value("source"), since: value("since"), until: value("until") };
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || state.busy) return;
  state.busy = true;
  $("ask-button").disabled = true;
  const turn = el("article", null, "turn");
  turn.append(el("p", question, "asked"));
  const answer = el("div", "", "answer");
  answer.setAttribute("aria-busy", "true");
  turn.append(answer);
  $("turns").append(turn);
  turn.scrollIntoView({ block: "nearest" });
  const body = { question, ...filters("ask"), history: state.history.slice(-MAX_HISTORY) };
  try {
    const result = await streamAnswer(body, (text) => answer.append(document.createTextNode(text)));
    showResult(turn, answer, result);
    state.history.push({
      asked: question, question: result.question, answer: result.refused ? result.answer : plain(result),
    });
    $("question").value = "";
  } catch (error) {
    answer.replaceChildren(el("span", String(error.message || error), "error"));
  } finally {
    answer.removeAttribute("aria-busy");
    state.busy = false;
    $("ask-button").disabled = false;
    $("question").focus();
  }
}

function plain(result) {
  return result.sentences.map((s) => s.text).join(" ");
}

// --- one checked answer ---------------------------------------------------------------------

function showResult(container, answer, result) {
  answer.replaceChildren();
  if (result.rewrite && result.rewrite.method !== "none") {
    container.insertBefore(el("p", "Answered as: " + result.question, "rewrite"), answer);
  }
  if (result.refused) {
    answer.append(el("p", "Refused: " + result.answer, "refusal"));
  } else {
    for (const sentence of result.sentences) answer.append(sentenceNode(sentence, result), " ");
  }
  const notes = el("ul", null, "notes");
  for (const line of result.warnings || []) notes.append(el("li", line));
  if (notes.childElementCount) container.append(notes);
  if ((result.disagreements || []).length) container.append(disagreementsNode(result));
  const shown = result.refused ? result.passages.slice(0, 3) : result.passages.filter((p) => p.cited);
  if (shown.length) container.append(passageList(shown, result, result.refused ? "Closest passages" : "Sources"));
  container.append(el("p", result.provider + " · " + result.model, "meta"));
  $("engine").textContent = "Answers by " + result.provider + " · model " + result.model;
}

function sentenceNode(sentence, result) {
  const span = el("span", sentence.text, "sentence");
  for (const n of sentence.citations) span.append(citeLink(n, result));
  if (!sentence.supported) {
    span.classList.add("unsupported");
    const why = sentence.unsupported_part ? "not supported: " + sentence.unsupported_part : "not supported by its passage";
    span.title = why;
    span.append(el("span", "[unsupported]", "flag"));
  }
  return span;
}

function citeLink(n, result) {
  const link = el("a", "[" + n + "]", "cite");
  link.href = "#passage-" + n;
  link.dataset.n = String(n);
  link.addEventListener("click", (event) => {
    event.preventDefault();
    const passage = result.passages.find((p) => p.n === n);
    if (passage) openArticle(passage.article_id, passage);
  });
  return link;
}

function disagreementsNode(result) {
  const box = el("div", null, "disagreements");
  box.append(el("strong", "The sources disagree"));
  const list = el("ul");
  for (const d of result.disagreements) {
    const item = el("li", d.about + ": ");
    d.values.forEach((v, i) => {
      if (i) item.append("; ");
      item.append(v.value + (v.published ? " (" + v.published + ")" : ""));
      for (const n of v.citations) item.append(citeLink(n, result));
    });
    list.append(item);
  }
  box.append(list);
  return box;
}

function passageList(passages, result, heading) {
  const box = el("details");
  box.append(el("summary", heading + " (" + passages.length + ")"));
  const list = el("ol");
  for (const p of passages) {
    const item = el("li");
    item.append(citeLink(p.n, result), " " + (p.title || p.article_id) + (p.source ? " · " + p.source : "") + (p.published ? " · " + p.published : ""));
    list.append(item);
  }
  box.append(list);
  return box;
}

// --- the article beside the answer ----------------------------------------------------------

async function openArticle(articleId, passage) {
  let article = state.articles.get(articleId);
  if (!article) {
    article = await api("/api/articles/" + encodeURIComponent(articleId));
    state.articles.set(articleId, article);
  }
  $("article").hidden = false;
  $("article-title").textContent = article.title || article.article_id;
  const meta = $("article-meta");
  meta.replaceChildren(el("span", [article.source, article.published].filter(Boolean).join(" · ")));
  if (/^https?:\/\//i.test(article.url)) {
    const link = el("a", article.url);
    link.href = article.url;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    meta.append(" ", link);
  } else if (article.url) meta.append(" " + article.url);
  const text = $("article-text");
  if (!passage) {
    text.replaceChildren(document.createTextNode(article.text));
    return;
  }
  const mark = el("mark", article.text.slice(passage.start, passage.end));
  mark.id = "highlight";
  mark.dataset.n = String(passage.n);
  mark.tabIndex = -1;
  text.replaceChildren(
    document.createTextNode(article.text.slice(0, passage.start)), mark,
    document.createTextNode(article.text.slice(passage.end)));
  mark.scrollIntoView({ block: "center" });
  mark.focus({ preventScroll: true });
}

function closeArticle() {
  $("article").hidden = true;
}

// --- summaries and sources ------------------------------------------------------------------

async function summarise(event) {
  event.preventDefault();
  const out = $("summary");
  out.replaceChildren(el("p", "Summarising…", "meta"));
  const value = (id) => $(id).value.trim() || null;
  const body = { target: value("sum-target"), topic: value("sum-topic"), ...filters("sum"), length: $("sum-length").value };
  try {
    const result = await api("/api/summarise", body);
    const box = el("article", null, "turn");
    const answer = el("div", "", "answer");
    box.append(el("p", result.scope || "Summary", "asked"), answer);
    showResult(box, answer, result);
    out.replaceChildren(box);
  } catch (error) {
    out.replaceChildren(el("p", String(error.message || error), "error"));
  }
}

async function loadSources() {
  const body = $("sources-table").tBodies[0];
  try {
    const rows = await api("/api/sources");
    body.replaceChildren();
    const outlets = new Set();
    for (const row of rows) {
      const tr = el("tr");
      const title = el("a", row.title || row.article_id);
      title.href = "#article-" + row.article_id;
      title.addEventListener("click", (event) => { event.preventDefault(); openArticle(row.article_id); });
      const cell = el("td");
      cell.append(title);
      tr.append(el("td", row.published), el("td", row.source), cell, el("td", row.chunks));
      body.append(tr);
      if (row.source) outlets.add(row.source);
    }
    $("outlets").replaceChildren(...[...outlets].sort().map((o) => { const opt = el("option"); opt.value = o; return opt; }));
  } catch (error) {
    body.replaceChildren(el("tr", String(error.message || error), "error"));
  }
}

function showTab(name) {
  for (const tab of ["ask", "summarise", "sources"]) {
    $("tab-" + tab).setAttribute("aria-selected", String(tab === name));
    $("view-" + tab).hidden = tab !== name;
  }
  if (name === "sources") loadSources();
}

async function showEngine() {
  try {
    const health = await (await fetch("/healthz")).json();
    $("engine").textContent = "Answers by " + health.provider + " · model " + health.model;
  } catch (error) {
    $("engine").textContent = "server unreachable";
  }
}

function setUp() {
  $("ask-form").addEventListener("submit", ask);
  $("summarise-form").addEventListener("submit", summarise);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("ask-form").requestSubmit(); }
  });
  $("new-chat").addEventListener("click", () => { state.history = []; $("turns").replaceChildren(); $("question").focus(); });
  $("article-close").addEventListener("click", closeArticle);
  for (const tab of ["ask", "summarise", "sources"]) $("tab-" + tab).addEventListener("click", () => showTab(tab));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("bot-token", $("token").value);
    $("token-form").hidden = true;
    loadSources();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeArticle();
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (event.key === "/" && !typing) { event.preventDefault(); showTab("ask"); $("question").focus(); }
  });
  showEngine();
  loadSources();
  $("question").focus();
}

document.addEventListener("DOMContentLoaded", setUp);
