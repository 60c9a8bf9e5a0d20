// pytest-ftclass report: the interactive parts (heatmap toggle, mispredicted-cases explorer).
// Inlined into report.html and allowed by the page's CSP through its sha256 hash.
// Every string from the report is user data: it goes into the page through
// textContent and attributes only, never through innerHTML.
(function () {
  "use strict";
  var PAGE_SIZE = 50;
  var EXCERPT = 120;
  var blob = document.getElementById("ftclass-data");
  var data = JSON.parse(blob.textContent);

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatConfidence(value) {
    return value === null || value === undefined ? "—" : value.toFixed(3);
  }

  // --- confusion-matrix toggle: counts or row shares ----------------------------
  Array.prototype.forEach.call(document.querySelectorAll(".cm-toggle"), function (button) {
    button.addEventListener("click", function () {
      var holder = document.getElementById(button.getAttribute("data-target"));
      var normalised = holder.classList.toggle("norm");
      button.setAttribute("aria-pressed", normalised ? "true" : "false");
      button.textContent = normalised ? "show counts" : "show row shares";
    });
  });

  // --- explorer ---------------------------------------------------------------------
  function textCell(row) {
    var td = el("td", "text-cell");
    if (row.text === null || row.text === undefined) {
      td.appendChild(el("span", "mono digest", row.digest || "—"));
      td.title = "input digest (the report holds no text; see --ft-report-text)";
      return td;
    }
    if (row.text.length <= EXCERPT) {
      td.appendChild(el("span", "case-text", row.text));
      return td;
    }
    var details = el("details");
    details.appendChild(el("summary", "case-text", row.text.slice(0, EXCERPT) + "…"));
    details.appendChild(el("div", "case-text full-text", row.text));
    td.appendChild(details);
    return td;
  }

  function compare(key, direction) {
    return function (a, b) {
      var x = a[key], y = b[key];
      if (x === y) return a.i - b.i;
      if (x === null || x === undefined) return 1;  // unknowns last either way
      if (y === null || y === undefined) return -1;
      if (typeof x === "string") return direction * x.localeCompare(y) || a.i - b.i;
      return direction * (x < y ? -1 : 1);
    };
  }

  function Explorer(root, rows) {
    this.root = root;
    this.rows = rows.map(function (row, i) { row.i = i; return row; });
    this.view = this.rows.slice();
    this.page = 0;
    this.sortKey = null;
    this.direction = 1;
    this.body = root.querySelector("tbody");
    this.status = root.querySelector(".ex-status");
    this.pageLabel = root.querySelector(".ex-page");
    this.prev = root.querySelector(".ex-prev");
    this.next = root.querySelector(".ex-next");
    this.filter = root.querySelector(".ex-filter");
    var self = this;
    this.filter.addEventListener("change", function () { self.apply(); });
    this.prev.addEventListener("click", function () { self.go(self.page - 1); });
    this.next.addEventListener("click", function () { self.go(self.page + 1); });
    Array.prototype.forEach.call(root.querySelectorAll("th[data-key]"), function (th) {
      var button = th.querySelector("button");
      button.addEventListener("click", function () { self.sortBy(th); });
    });
    this.apply();
  }

  Explorer.prototype.apply = function () {
    var wanted = this.filter.value;
    this.view = this.rows.filter(function (row) {
      return !wanted || row.expected === wanted || row.predicted === wanted;
    });
    if (this.sortKey) this.view.sort(compare(this.sortKey, this.direction));
    this.go(0);
  };

  Explorer.prototype.sortBy = function (th) {
    var key = th.getAttribute("data-key");
    this.direction = this.sortKey === key ? -this.direction : (key === "confidence" ? -1 : 1);
    this.sortKey = key;
    Array.prototype.forEach.call(this.root.querySelectorAll("th[data-key]"), function (other) {
      other.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", this.direction === 1 ? "ascending" : "descending");
    this.apply();
  };

  Explorer.prototype.go = function (page) {
    var pages = Math.max(1, Math.ceil(this.view.length / PAGE_SIZE));
    this.page = Math.min(Math.max(page, 0), pages - 1);
    var start = this.page * PAGE_SIZE;
    var fragment = document.createDocumentFragment();
    this.view.slice(start, start + PAGE_SIZE).forEach(function (row) {
      var tr = el("tr");
      var caseCell = el("td");
      caseCell.appendChild(el("span", "mono case-id", row.case_id));
      if (row.critical) caseCell.appendChild(el("span", "badge critical", "critical"));
      caseCell.appendChild(el("div", "nodeid", row.nodeid));
      tr.appendChild(caseCell);
      var expected = el("td");
      expected.appendChild(el("code", "expected", row.expected));
      tr.appendChild(expected);
      var predicted = el("td");
      predicted.appendChild(el("code", "predicted", row.predicted));
      if (row.out_of_set) predicted.appendChild(el("span", "badge oos", "out of set"));
      tr.appendChild(predicted);
      tr.appendChild(el("td", "num confidence", formatConfidence(row.confidence)));
      tr.appendChild(textCell(row));
      fragment.appendChild(tr);
    });
    this.body.replaceChildren(fragment);
    var shown = this.view.length;
    this.status.textContent = shown === this.rows.length
      ? shown + " mispredicted cases"
      : shown + " of " + this.rows.length + " mispredicted cases";
    this.pageLabel.textContent = "page " + (this.page + 1) + " of " + pages;
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
  };

  Array.prototype.forEach.call(document.querySelectorAll(".explorer"), function (root) {
    var section = data.sections[Number(root.getAttribute("data-section"))];
    root.hidden = false;
    new Explorer(root, section.rows);
  });

  document.documentElement.setAttribute("data-ready", "1");
})();
