// Line-to-line provenance: hover shows related lines, click keeps them, dividers resize panes.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("lineMappings").textContent || "{}");
  // For each listing kind: the maps from its mapping line numbers to the other listings'.
  var links = {
    pre: { post: data.preToPost },
    post: { pre: data.postToPre, py: data.postToPyCode, cpp: data.postToCppCode },
    py: { post: data.pyCodeToPost },
    cpp: { post: data.cppCodeToPost },
  };
  var listings = {};
  Array.prototype.forEach.call(document.querySelectorAll(".code[data-kind]"), function (el) {
    var shift = parseInt(el.getAttribute("data-shift"), 10) || 0;
    var kind = el.getAttribute("data-kind");
    listings[kind] = { el: el, lines: el.children, shift: shift };
    for (var i = 0; i < el.children.length; i++) {
      el.children[i].provenanceKind = kind;
      el.children[i].provenanceNumber = i + 1 - shift;
    }
  });

  function lineAt(kind, number) {
    var listing = listings[kind];
    if (!listing) return null;
    var index = number - 1 + listing.shift;
    return index >= 0 && index < listing.lines.length ? listing.lines[index] : null;
  }

  function targets(kind, number) {
    var found = [];
    var maps = links[kind] || {};
    Object.keys(maps).forEach(function (other) {
      ((maps[other] || {})[number] || []).forEach(function (n) { found.push([other, n]); });
    });
    return found;
  }

  // The line itself, its direct targets, and one step further through the post-grad graph
  // (so a pre-grad line also reaches the generated code, and a kernel line the pre-grad graph).
  function related(kind, number) {
    var result = [[kind, number]];
    targets(kind, number).forEach(function (t) {
      result.push(t);
      if (kind !== "post" && t[0] === "post") {
        targets("post", t[1]).forEach(function (u) { if (u[0] !== kind) result.push(u); });
      }
    });
    return result;
  }

  Object.keys(links).forEach(function (kind) {
    Object.keys(links[kind]).forEach(function (other) {
      Object.keys(links[kind][other] || {}).forEach(function (n) {
        var line = lineAt(kind, parseInt(n, 10));
        if (line) line.classList.add("mapped");
      });
    });
  });

  var marked = { near: [], chosen: [] };
  function mark(cls, pairs) {
    marked[cls].forEach(function (line) { line.classList.remove(cls); });
    marked[cls] = [];
    pairs.forEach(function (p) {
      var line = lineAt(p[0], p[1]);
      if (line) { line.classList.add(cls); marked[cls].push(line); }
    });
  }

  function reveal(lines, except) {
    var seen = {};
    lines.forEach(function (line) {
      var pane = line.closest(".scroll");
      if (!pane || line.provenanceKind === except || seen[line.provenanceKind]) return;
      seen[line.provenanceKind] = true;
      var top = line.getBoundingClientRect().top - pane.getBoundingClientRect().top;
      if (top < 0 || top > pane.clientHeight - line.offsetHeight) {
        pane.scrollTop += top - pane.clientHeight / 3;
      }
    });
  }

  function lineOf(event) {
    var line = event.target.closest ? event.target.closest(".code .l") : null;
    return line && line.provenanceKind ? line : null;
  }

  var panes = document.querySelector(".panes");
  panes.addEventListener("mouseover", function (event) {
    var line = lineOf(event);
    mark("near", line ? related(line.provenanceKind, line.provenanceNumber) : []);
  });
  panes.addEventListener("mouseleave", function () { mark("near", []); });
  panes.addEventListener("click", function (event) {
    var line = lineOf(event);
    if (!line) return;
    if (marked.chosen[0] === line) { mark("chosen", []); return; }
    mark("chosen", related(line.provenanceKind, line.provenanceNumber));
    reveal(marked.chosen, line.provenanceKind);
  });

  // Start the generated code at its first mapped line (the kernels, not the imports).
  var firstMapped = null;
  ["py", "cpp"].some(function (kind) {
    firstMapped = listings[kind] ? listings[kind].el.querySelector(".l.mapped") : null;
    return firstMapped !== null;
  });
  if (firstMapped) reveal([firstMapped], null);

  Array.prototype.forEach.call(document.querySelectorAll(".divider"), function (bar) {
    bar.addEventListener("mousedown", function (event) {
      event.preventDefault();
      var pane = bar.previousElementSibling;
      var startX = event.clientX;
      var startWidth = pane.getBoundingClientRect().width;
      bar.classList.add("dragging");
      function move(e) {
        pane.style.flex = "0 0 " + Math.max(60, startWidth + e.clientX - startX) + "px";
      }
      function stop() {
        bar.classList.remove("dragging");
        document.removeEventListener("mousemove", move);
        document.removeEventListener("mouseup", stop);
      }
      document.addEventListener("mousemove", move);
      document.addEventListener("mouseup", stop);
    });
  });
})();
