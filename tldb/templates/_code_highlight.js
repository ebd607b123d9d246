// Colours Python tokens (comments, strings, keywords, numbers) in the page's first <pre>.
// The page is plain escaped code without this script; it runs once when the page loads.
(function () {
  var pre = document.querySelector("pre");
  if (!pre || pre.textContent.length > 4000000) { return; }
  var token = new RegExp([
    /(#[^\n]*)/.source,
    /([rRbBuUfF]{0,2}(?:"""[\s\S]*?"""|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))/.source,
    /\b(and|as|assert|async|await|break|class|continue|def|del|elif|else|except|finally|for|from|global|if|import|in|is|lambda|nonlocal|not|or|pass|raise|return|try|while|with|yield|None|True|False)\b/.source,
    /\b(\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?)\b/.source
  ].join("|"), "g");
  var styles = [
    "color:#6a737d;font-style:italic", "color:#032f62",
    "color:#d73a49;font-weight:bold", "color:#005cc5"
  ];
  function esc(s) { return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
  var text = pre.textContent, out = [], last = 0, m;
  while ((m = token.exec(text)) !== null) {
    out.push(esc(text.slice(last, m.index)));
    for (var g = 1; g <= 4; g++) {
      if (m[g] !== undefined) {
        out.push('<span style="' + styles[g - 1] + '">' + esc(m[0]) + "</span>");
        break;
      }
    }
    last = token.lastIndex;
  }
  out.push(esc(text.slice(last)));
  pre.innerHTML = out.join("");
})();
