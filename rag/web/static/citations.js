// Citation links in answers: a click on [n] shows that answer's passages in the sources panel,
// highlights passage n, marks its supporting sentence (<mark class="rag-evidence">) and scrolls
// to it. Links look like <a class="rag-cite" href="#rag-src-<turn>-<n>"> (rag/web/render.py).
// A click on a passage card expands or collapses its text. "查看全文" (a.rag-fulltext) asks the
// server for the whole document through a hidden textbox and button (#rag-doc-request,
// #rag-doc-open) and shows the answer (#rag-doc-view .rag-modal) scrolled to the evidence.
(() => {
  if (window.ragCitations) return;

  function showPassage(turn, n) {
    const panel = document.querySelector("#rag-sources");
    if (!panel) return false;
    const target = panel.querySelector(`#rag-src-${turn}-${n}`);
    if (!target) return false;
    panel.querySelectorAll(".rag-turn").forEach((section) => {
      section.hidden = section.dataset.turn !== String(turn);
    });
    panel.querySelectorAll(".rag-highlight").forEach((el) => el.classList.remove("rag-highlight"));
    panel.querySelectorAll(".rag-evidence-active").forEach((el) => el.classList.remove("rag-evidence-active"));
    target.classList.add("rag-highlight", "rag-expanded");
    const evidence = target.querySelector("mark.rag-evidence");
    if (evidence) evidence.classList.add("rag-evidence-active");
    (evidence || target).scrollIntoView({ behavior: "smooth", block: "center" });
    return true;
  }

  let requests = 0;

  function openDocument(link) {
    const box = document.querySelector("#rag-doc-request textarea, #rag-doc-request input");
    const button = document.querySelector("#rag-doc-open");
    if (!box || !button) return;
    const key = String(++requests);
    const { kb, doc, chunk, start, end } = link.dataset;
    box.value = JSON.stringify({ key, kb, doc, chunk, start: Number(start), end: Number(end) });
    box.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => button.click(), 50);
    const started = Date.now();
    const wait = setInterval(() => {
      const modal = document.querySelector(`#rag-doc-view .rag-modal[data-key="${key}"]`);
      if (!modal && Date.now() - started < 30000) return;
      clearInterval(wait);
      if (!modal) return;
      modal.hidden = false;
      const spot = modal.querySelector("mark.rag-evidence") || modal.querySelector(".rag-doc-chunk");
      if (spot) spot.scrollIntoView({ block: "center" });
    }, 100);
  }

  document.addEventListener(
    "click",
    (event) => {
      const link = event.target.closest("a.rag-cite");
      if (link) {
        const match = (link.getAttribute("href") || "").match(/rag-src-(\d+)-(\d+)/);
        event.preventDefault();
        event.stopPropagation();
        if (match && !showPassage(match[1], match[2])) link.classList.add("rag-missing");
        return;
      }
      const full = event.target.closest("a.rag-fulltext");
      if (full) {
        event.preventDefault();
        event.stopPropagation();
        openDocument(full);
        return;
      }
      const modal = event.target.closest(".rag-modal");
      if (modal) {
        if (event.target.closest(".rag-modal-close") || event.target === modal) modal.hidden = true;
        return;
      }
      const card = event.target.closest(".rag-passage");
      if (card && !window.getSelection().toString()) card.classList.toggle("rag-expanded");
    },
    true,
  );

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.querySelectorAll(".rag-modal").forEach((m) => (m.hidden = true));
  });

  window.ragCitations = { showPassage };
})();
