/* rendervisor's readiness observer, installed in every page before the
 * page's own scripts run (Page.addScriptToEvaluateOnNewDocument). It keeps
 * what only the page can see: when the DOM last changed, when the main
 * thread was last busy, and Grafana's render binding message. The probe
 * below reads it together with Grafana's own signals; renderer/ready.c
 * adds what only CDP sees (requests in flight, the load event) and decides.
 * docs/renderer.md, "Readiness", gives every rule and why. */
(function () {
  'use strict';
  var KEY = '__rendervisorReadiness';
  if (Object.prototype.hasOwnProperty.call(window, KEY)) return;
  var now = function () { return performance.now(); };
  var st = { changed: 0, busyEnd: 0, message: null, messageAt: 0, timers: new Map(),
             setTimeout: window.setTimeout, clearTimeout: window.clearTimeout };
  Object.defineProperty(window, KEY, { value: st });

  /* The page's own short timers: on a page without Grafana's signals, work
   * a timer will start is the only sign that more is to come. A timer is
   * kept until it is due (its callback is not wrapped) or cleared. */
  var TIMER_MAX_MS = 1000;
  window.setTimeout = function (handler, ms) {
    var id = st.setTimeout.apply(window, arguments);
    var delay = Number(ms) || 0;
    if (delay <= TIMER_MAX_MS) {
      if (st.timers.size >= 1024) st.timers.clear(); /* a page setting timers without end */
      st.timers.set(id, now() + delay);
    }
    return id;
  };
  window.clearTimeout = function (id) {
    st.timers.delete(id);
    return st.clearTimeout.apply(window, arguments);
  };

  var changed = function () { st.changed = now(); };
  /* The DOM, layout and long-task observers start with the first probe
   * (probe.js): what happened before the load event does not matter, and
   * watching a document while it is parsed costs every render. */
  st.observe = function () {
    if (st.observing) return;
    st.observing = true;
    st.changed = now();
    try {
      new MutationObserver(changed).observe(document, {
        subtree: true, childList: true, attributes: true, characterData: true });
    } catch (e) { /* no DOM to watch */ }
    try {
      new PerformanceObserver(function (list) {
        list.getEntries().forEach(function (e) {
          if (!e.hadRecentInput) changed();
        });
      }).observe({ type: 'layout-shift' });
    } catch (e) { /* layout-shift unknown to this browser */ }
    try {
      new PerformanceObserver(function (list) {
        list.getEntries().forEach(function (e) {
          var end = e.startTime + e.duration;
          if (end > st.busyEnd) st.busyEnd = end;
        });
      }).observe({ type: 'longtask', buffered: true });
    } catch (e) { /* longtask unknown to this browser */ }
  };

  /* Grafana's render binding (Grafana 12.x with reportRenderBinding): the
   * page calls this with {"type":"REPORT_RENDER_COMPLETE","data":{...}} once
   * every panel holds its data. A page that defines it itself keeps its own. */
  if (!('__grafanaImageRendererMessageChannel' in window)) {
    Object.defineProperty(window, '__grafanaImageRendererMessageChannel', {
      configurable: true, writable: true,
      value: function (text) {
        var m;
        try { m = JSON.parse(String(text)); } catch (e) { return; }
        if (m && m.type === 'REPORT_RENDER_COMPLETE' && !st.message) {
          st.message = m.data && typeof m.data === 'object' ? m.data : {};
          st.messageAt = now();
          changed();
        }
      }
    });
  }
})();
