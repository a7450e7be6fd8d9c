// Typeset the formulas pymdownx.arithmatex marked (generic mode: \( … \) inline, \[ … \] display) with the
// KaTeX this site serves itself (assets/katex, copied in by docs/hooks/katex.py): no CDN, works offline.
document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll(".arithmatex")) {
    const source = element.textContent.trim();
    const display = source.startsWith("\\[");
    const tex = source.slice(2, -2);
    katex.render(tex, element, { displayMode: display, throwOnError: false });
  }
});
