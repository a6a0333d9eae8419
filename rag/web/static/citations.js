// Citation links in answers: a click on [n] shows that answer's passages in the sources panel,
// highlights passage n, expands it and scrolls it into view. Links look like
// <a class="rag-cite" href="#rag-src-<turn>-<n>"> (rendered by rag/web/render.py).
// A click on a passage card expands or collapses its text.
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
    panel.querySelectorAll(".rag-passage.rag-highlight").forEach((el) => el.classList.remove("rag-highlight"));
    target.classList.add("rag-highlight", "rag-expanded");
    target.scrollIntoView({ behavior: "smooth", block: "center" });
    return true;
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
      const card = event.target.closest(".rag-passage");
      if (card && !window.getSelection().toString()) card.classList.toggle("rag-expanded");
    },
    true,
  );

  window.ragCitations = { showPassage };
})();
