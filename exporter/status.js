// rendervisor's status page: every data-refresh seconds, fetch status.json
// and copy its texts and chart paths into the server-rendered page. The
// exporter builds every text; nothing here formats a figure, so an updated
// page looks exactly like a freshly served one. Without this script the
// page is complete as served.
(function () {
  'use strict';
  var refresh = parseInt(document.documentElement.getAttribute('data-refresh'), 10) || 0;
  var source = document.getElementById('source');
  var sourceText = document.getElementById('source-text');

  // Grafana's readiness signal, which rendervisor's renderer waits for:
  // given once the first poll has been applied (at once when there is no
  // polling), so a render of this page shows live figures.
  function rendered() {
    if (typeof window.panelsRendered !== 'number') {
      window.panelsRendered = document.querySelectorAll('.panel-solo').length;
    }
  }

  function setSource(cls, text) {
    source.className = cls;
    sourceText.textContent = text;
  }

  // view: {cells: {key: text}, chart: {key: svg path}, limit_y: y or null}
  function applyView(scope, view) {
    var cells = view.cells || {}, chart = view.chart || {};
    scope.querySelectorAll('[data-cell]').forEach(function (el) {
      var key = el.getAttribute('data-cell');
      if (typeof cells[key] === 'string') el.textContent = cells[key];
    });
    scope.querySelectorAll('[data-chart]').forEach(function (el) {
      var key = el.getAttribute('data-chart');
      if (typeof chart[key] === 'string') el.setAttribute('d', chart[key]);
    });
    var limit = scope.querySelector('[data-limit]');
    if (limit && 'limit_y' in chart) {
      var y = chart.limit_y;
      limit.setAttribute('class', y === null ? 'limit none' : 'limit');
      limit.setAttribute('y1', y === null ? 0 : y);
      limit.setAttribute('y2', y === null ? 0 : y);
    }
  }

  // false when the page no longer fits the figures (the exporter restarted
  // with another set of children, or the memory part came or went): then
  // the page is loaded again.
  function apply(data) {
    var rows = document.querySelectorAll('tr[data-child]');
    var memory = document.getElementById('memory');
    if (rows.length !== data.children.length) return false;
    if (!memory !== !data.memory) return false;
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute('data-child') !== data.children[i].name) return false;
    }
    for (i = 0; i < rows.length; i++) {
      rows[i].className = data.children[i].view['class'];
      applyView(rows[i], data.children[i].view);
    }
    applyView(document.getElementById('latency'), data.latency.view);
    if (memory) {
      memory.className = data.memory.view['class'];
      applyView(memory, data.memory.view);
    }
    applyView(document.getElementById('meta'), data.view);
    return true;
  }

  function poll() {
    var ctl = new AbortController();
    var timer = setTimeout(function () { ctl.abort(); }, 10000);
    fetch('status.json', {cache: 'no-store', signal: ctl.signal})
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (data) {
        if (!apply(data)) {
          location.reload();
          return;
        }
        setSource('live', 'figures of ' + data.view.cells.updated + ', live: updated every ' + refresh + ' s');
      })
      .catch(function (e) {
        var shown = document.querySelector('#meta [data-cell=updated]').textContent;
        setSource('failed', 'figures of ' + shown + ', not updated: ' +
                  (e.name === 'AbortError' ? 'no answer in 10 s' : e.message) + '; trying every ' + refresh + ' s');
      })
      .then(function () {
        clearTimeout(timer);
        rendered();
        setTimeout(poll, refresh * 1000);
      });
  }

  if (refresh > 0) {
    setTimeout(poll, refresh * 1000);
  } else {
    rendered();
  }
})();
