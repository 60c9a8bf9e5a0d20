// pytest-ftclass report: the interactive parts (heatmap toggle and clicks, collapsible
// tables, the cases explorer).  Inlined into report.html and compare.html and allowed by
// the page's CSP through its sha256 hash.  Every string from the report is user data: it
// goes into the page through textContent and attributes only, never through innerHTML.
(function () {
  "use strict";
  var PAGE_SIZE = 50;      // explorer rows per page
  var COLLAPSED = 20;      // rows a table shows before "show all"
  var MOST_SHOWN = 500;    // rows a table draws at once (searching narrows further)
  var EXCERPT = 120;
  var data = JSON.parse(document.getElementById("ftclass-data").textContent);
  var labels = data.labels || [];

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fixed(value, digits) {
    return value === null || value === undefined ? "—" : value.toFixed(digits);
  }
  function pvalue(value) {
    if (value === null || value === undefined) return "—";
    return Number(value.toPrecision(3)).toString();
  }
  function each(selector, fn, root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(selector), fn);
  }

  // --- confusion-matrix toggle: counts or row shares ----------------------------
  each(".cm-toggle", function (button) {
    button.addEventListener("click", function () {
      var holder = document.getElementById(button.getAttribute("data-target"));
      var normalised = holder.classList.toggle("norm");
      button.setAttribute("aria-pressed", normalised ? "true" : "false");
      button.textContent = normalised ? "show counts" : "show row shares";
    });
  });

  // --- collapsible tables ---------------------------------------------------------
  function cell(kind, value, column) {
    var td = el("td");
    if (kind === "label" || kind === "text") {
      td.appendChild(el(kind === "label" ? "code" : "span", null, value === null ? "—" : value));
    } else if (kind === "int") {
      td.className = "num"; td.textContent = value === null ? "—" : String(value);
    } else if (kind === "num") {
      td.className = "num"; td.textContent = fixed(value, 3);
    } else if (kind === "pct") {
      td.className = "num"; td.textContent = value === null ? "—" : (100 * value).toFixed(1) + " %";
    } else if (kind === "p") {
      td.className = "num"; td.textContent = pvalue(value);
    } else if (kind === "ci") {
      td.className = "num"; td.textContent = value ? value[0].toFixed(3) + "–" + value[1].toFixed(3) : "—";
    } else if (kind === "bar") {
      td.className = "bar-cell";
      var bar = el("div", "bar " + (column.style || ""));
      bar.title = column.title + " " + fixed(value, 3);
      var fill = el("span", "fill");
      fill.style.width = (100 * (value || 0)).toFixed(1) + "%";
      bar.appendChild(fill);
      bar.appendChild(el("span", "val", fixed(value, 3)));
      td.appendChild(bar);
    } else if (kind === "delta") {
      td.className = "bar-cell";
      var dbar = el("div", "dbar");
      if (value !== null && value !== undefined) {
        var part = el("span", "fill " + (value >= 0 ? "up" : "down"));
        var width = Math.min(Math.abs(value) / (column.scale || 1), 1) * 50;
        part.style.width = width.toFixed(1) + "%";
        part.style.left = (value >= 0 ? 50 : 50 - width).toFixed(1) + "%";
        dbar.appendChild(part);
      }
      dbar.appendChild(el("span", "val", value === null || value === undefined ? "—"
        : (value > 0 ? "+" : value < 0 ? "−" : "") + Math.abs(value).toFixed(3)));
      td.appendChild(dbar);
    } else if (kind === "cases") {
      if (!document.querySelector(".explorer")) return td;  // the comparison page lists no cases
      var button = el("button", "show-cases", "cases");
      button.type = "button";
      button.setAttribute("data-model", value[0]);
      button.setAttribute("data-task", value[1]);
      button.setAttribute("data-e", value[2]);
      button.setAttribute("data-p", value[3]);
      td.appendChild(button);
    }
    return td;
  }

  function searchable(row, columns) {
    var parts = [];
    columns.forEach(function (column, i) {
      if (column.kind === "label" || column.kind === "text") parts.push(String(row[i]));
    });
    return parts.join("\u0000").toLowerCase();
  }

  function CollapsibleTable(root, spec) {
    this.spec = spec;
    this.body = root.querySelector("tbody");
    this.search = root.querySelector(".ct-search");
    this.all = root.querySelector(".ct-all");
    this.status = root.querySelector(".ct-status");
    this.expanded = false;
    this.keys = spec.rows.map(function (row) { return searchable(row, spec.columns); });
    var self = this;
    if (this.search) this.search.addEventListener("input", function () { self.draw(); });
    if (this.all) this.all.addEventListener("click", function () {
      self.expanded = !self.expanded;
      self.all.textContent = self.expanded ? "show " + COLLAPSED : "show all " + spec.rows.length;
      self.draw();
    });
    this.draw();
  }

  CollapsibleTable.prototype.draw = function () {
    var spec = this.spec, keys = this.keys;
    var wanted = this.search ? this.search.value.trim().toLowerCase() : "";
    var matching = [];
    for (var i = 0; i < spec.rows.length; i++) {
      if (!wanted || keys[i].indexOf(wanted) !== -1) matching.push(i);
    }
    var limit = wanted || this.expanded ? MOST_SHOWN : COLLAPSED;
    var fragment = document.createDocumentFragment();
    matching.slice(0, limit).forEach(function (index) {
      var tr = el("tr");
      spec.rows[index].forEach(function (value, k) {
        tr.appendChild(cell(spec.columns[k].kind, value, spec.columns[k]));
      });
      fragment.appendChild(tr);
    });
    this.body.replaceChildren(fragment);
    if (this.status) {
      var shown = Math.min(limit, matching.length);
      this.status.textContent = shown === spec.rows.length ? "" :
        shown + " of " + (wanted ? matching.length + " matching (" + spec.rows.length + ")" : spec.rows.length) +
        " rows" + (matching.length > shown && (wanted || this.expanded) ? ": search to narrow" : "");
    }
  };

  each(".ctable", function (root) {
    new CollapsibleTable(root, data.tables[Number(root.getAttribute("data-table"))]);
  });

  // --- the cases explorer -----------------------------------------------------------
  // row: [task, case_id, nodeid, expected, predicted, confidence, status, flags, digest, text, error]
  var TASK = 0, ID = 1, NODE = 2, EXPECTED = 3, PREDICTED = 4, CONFIDENCE = 5, STATUS = 6,
      FLAGS = 7, DIGEST = 8, TEXT = 9, ERROR = 10;
  var SORT_KEYS = { case_id: ID, expected: EXPECTED, predicted: PREDICTED, confidence: CONFIDENCE };

  function textCell(row) {
    var td = el("td", "text-cell");
    var text = row[TEXT];
    if (text === null || text === undefined) {
      td.appendChild(el("span", "mono digest", row[DIGEST] || "—"));
      td.title = "input digest (the report holds no text; see --ft-report-text)";
      return td;
    }
    if (text.length <= EXCERPT) {
      td.appendChild(el("span", "case-text", text));
      return td;
    }
    var details = el("details");
    details.appendChild(el("summary", "case-text", text.slice(0, EXCERPT) + "…"));
    details.appendChild(el("div", "case-text full-text", text));
    td.appendChild(details);
    return td;
  }

  function labelOf(index) { return index < 0 ? null : labels[index]; }

  function sortValue(row, key) {
    var value = row[key];
    if (key === EXPECTED || key === PREDICTED) return labelOf(value);
    return value;
  }

  function compare(key, direction) {
    return function (a, b) {
      var x = sortValue(a.row, key), y = sortValue(b.row, key);
      if (x === y) return a.i - b.i;
      if (x === null || x === undefined) return 1;  // unknowns last either way
      if (y === null || y === undefined) return -1;
      if (typeof x === "string") return direction * x.localeCompare(y) || a.i - b.i;
      return direction * (x < y ? -1 : 1);
    };
  }

  function Explorer(root) {
    this.root = root;
    this.entries = (data.rows || []).map(function (row, i) { return { row: row, i: i }; });
    this.view = [];
    this.page = 0;
    this.sortKey = null;
    this.direction = 1;
    this.labelIndex = {};
    for (var i = 0; i < labels.length; i++) this.labelIndex[labels[i]] = i;
    var q = function (selector) { return root.querySelector(selector); };
    this.body = q("tbody");
    this.status = q(".ex-status-line");
    this.pageLabel = q(".ex-page");
    this.prev = q(".ex-prev");
    this.next = q(".ex-next");
    this.model = q(".ex-model");
    this.task = q(".ex-task");
    this.outcome = q(".ex-status");
    this.klass = q(".ex-class");
    this.expected = q(".ex-expected");
    this.predicted = q(".ex-predicted");
    this.search = q(".ex-search");
    var list = document.getElementById("ex-labels");
    var options = document.createDocumentFragment();
    labels.forEach(function (label) { var o = el("option"); o.value = label; options.appendChild(o); });
    list.appendChild(options);
    var self = this;
    this.fillTasks();
    this.model.addEventListener("change", function () { self.fillTasks(); self.apply(); });
    [this.task, this.outcome].forEach(function (s) { s.addEventListener("change", function () { self.apply(); }); });
    [this.klass, this.expected, this.predicted, this.search].forEach(function (input) {
      input.addEventListener("input", function () { self.apply(); });
    });
    q(".ex-reset").addEventListener("click", function () { self.set({ status: "1" }); });
    this.prev.addEventListener("click", function () { self.go(self.page - 1); });
    this.next.addEventListener("click", function () { self.go(self.page + 1); });
    each("th[data-key]", function (th) {
      th.querySelector("button").addEventListener("click", function () { self.sortBy(th); });
    }, root);
    root.hidden = false;
    this.apply();
  }

  Explorer.prototype.fillTasks = function () {
    var model = this.model.value, chosen = this.task.value;
    var options = [el("option", null, "all tasks")];
    options[0].value = "";
    (data.tasks || []).forEach(function (task, i) {
      if (model !== "" && String(task.model) !== model) return;
      var option = el("option", null, task.task);
      option.value = String(i);
      options.push(option);
    });
    this.task.replaceChildren.apply(this.task, options);
    this.task.value = options.some(function (o) { return o.value === chosen; }) ? chosen : "";
  };

  // Set every filter at once (missing ones cleared) and show the first page.
  Explorer.prototype.set = function (filters) {
    this.model.value = filters.model === undefined ? "" : String(filters.model);
    this.fillTasks();
    this.task.value = filters.task === undefined ? "" : String(filters.task);
    this.outcome.value = filters.status === undefined ? "" : String(filters.status);
    this.klass.value = "";
    this.expected.value = filters.expected === undefined ? "" : labels[filters.expected];
    this.predicted.value = filters.predicted === undefined ? "" : labels[filters.predicted];
    this.search.value = "";
    this.apply();
  };

  Explorer.prototype.wanted = function (input) {
    var text = input.value;
    if (text === "") return undefined;
    var index = this.labelIndex[text];
    return index === undefined ? -2 : index;  // -2: a label no case has
  };

  Explorer.prototype.apply = function () {
    var model = this.model.value === "" ? null : Number(this.model.value);
    var task = this.task.value === "" ? null : Number(this.task.value);
    var status = this.outcome.value === "" ? null : Number(this.outcome.value);
    var klass = this.wanted(this.klass), expected = this.wanted(this.expected),
        predicted = this.wanted(this.predicted);
    var needle = this.search.value.trim().toLowerCase();
    var tasks = data.tasks || [];
    this.view = this.entries.filter(function (entry) {
      var row = entry.row;
      if (task !== null && row[TASK] !== task) return false;
      if (model !== null && tasks[row[TASK]].model !== model) return false;
      if (status !== null && row[STATUS] !== status) return false;
      if (klass !== undefined && row[EXPECTED] !== klass && row[PREDICTED] !== klass) return false;
      if (expected !== undefined && row[EXPECTED] !== expected) return false;
      if (predicted !== undefined && row[PREDICTED] !== predicted) return false;
      if (needle && String(row[ID]).toLowerCase().indexOf(needle) === -1) return false;
      return true;
    });
    if (this.sortKey !== null) this.view.sort(compare(this.sortKey, this.direction));
    this.go(0);
  };

  Explorer.prototype.sortBy = function (th) {
    var key = SORT_KEYS[th.getAttribute("data-key")];
    this.direction = this.sortKey === key ? -this.direction : (key === CONFIDENCE ? -1 : 1);
    this.sortKey = key;
    each("th[data-key]", function (other) { other.setAttribute("aria-sort", "none"); }, this.root);
    th.setAttribute("aria-sort", this.direction === 1 ? "ascending" : "descending");
    this.apply();
  };

  Explorer.prototype.go = function (page) {
    var pages = Math.max(1, Math.ceil(this.view.length / PAGE_SIZE));
    this.page = Math.min(Math.max(page, 0), pages - 1);
    var start = this.page * PAGE_SIZE;
    var fragment = document.createDocumentFragment();
    var tasks = data.tasks || [];
    this.view.slice(start, start + PAGE_SIZE).forEach(function (entry) {
      var row = entry.row;
      var tr = el("tr", "status-" + ["correct", "mispredicted", "error"][row[STATUS]]);
      var caseCell = el("td");
      caseCell.appendChild(el("span", "mono case-id", row[ID]));
      if (row[FLAGS] & 1) caseCell.appendChild(el("span", "badge critical", "critical"));
      if (row[NODE]) caseCell.appendChild(el("div", "nodeid", row[NODE]));
      tr.appendChild(caseCell);
      tr.appendChild(el("td", "task", tasks[row[TASK]].task));
      var expected = el("td");
      expected.appendChild(el("code", "expected", labelOf(row[EXPECTED])));
      tr.appendChild(expected);
      var predicted = el("td");
      if (row[STATUS] === 2) {
        predicted.appendChild(el("pre", "predicted error-text status-error", data.errors[row[ERROR]]));
      } else {
        predicted.appendChild(el("code", "predicted", labelOf(row[PREDICTED])));
        if (row[FLAGS] & 2) predicted.appendChild(el("span", "badge oos", "out of set"));
      }
      tr.appendChild(predicted);
      tr.appendChild(el("td", "num confidence", fixed(row[CONFIDENCE], 3)));
      tr.appendChild(textCell(row));
      fragment.appendChild(tr);
    });
    this.body.replaceChildren(fragment);
    var shown = this.view.length, total = this.entries.length;
    this.status.textContent = shown + " of " + total + " cases";
    this.pageLabel.textContent = "page " + (this.page + 1) + " of " + pages;
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
  };

  var explorerRoot = document.querySelector(".explorer");
  var explorer = explorerRoot ? new Explorer(explorerRoot) : null;

  function show(filters) {
    if (!explorer) return;
    explorer.set(filters);
    document.getElementById("explorer").scrollIntoView();
  }

  function numberOrUndefined(value) {
    return value === null || value === "" ? undefined : Number(value);
  }

  // A heatmap cell: its model and task (from the table), expected (its row) and predicted.
  each("table.confusion:not(.static)", function (table) {
    table.addEventListener("click", function (event) {
      var td = event.target.closest("td.cm-cell");
      if (!td || td.classList.contains("zero")) return;
      show({
        model: numberOrUndefined(table.getAttribute("data-model")),
        task: numberOrUndefined(table.getAttribute("data-task")),
        expected: Number(td.parentNode.getAttribute("data-e")),
        predicted: Number(td.getAttribute("data-p")),
      });
    });
  });

  // "cases" of a confused pair, "list these cases" of a section.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.show-cases");
    if (!button) return;
    show({
      model: numberOrUndefined(button.getAttribute("data-model")),
      task: numberOrUndefined(button.getAttribute("data-task")),
      expected: numberOrUndefined(button.getAttribute("data-e")),
      predicted: numberOrUndefined(button.getAttribute("data-p")),
    });
  });

  document.documentElement.setAttribute("data-ready", "1");
})();
