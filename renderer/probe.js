/* rendervisor's readiness probe: evaluated in the page (Runtime.evaluate,
 * awaitPromise), called with its options by renderer/ready.c. It waits in
 * the page, so a wait costs one round trip, and answers as soon as every
 * page-side rule holds, a task has run since they began to, and the DOM has
 * been quiet for o.quietMs; or after o.waitMs. The answer says what kind of
 * page this is, which rule blocked at the end, and how long each rule
 * blocked; nothing in it is text the page wrote.
 * The rules and why they are there: docs/renderer.md, "Readiness". */
(function (o) {
  'use strict';
  var w = window, d = document;
  var st = w.__rendervisorReadiness ||
           { changed: 0, busyEnd: 0, message: null, messageAt: 0, timers: new Map(),
             setTimeout: w.setTimeout, clearTimeout: w.clearTimeout };
  var TERMINAL = { Done: 1, Error: 1, Streaming: 1 };
  if (st.observe) st.observe();

  /* A scene dashboard (Grafana 10+): the running query count, then the scene
   * itself, walked the way Grafana walks it (forEachChild): a variable still
   * loading, or an active panel whose data is not terminal yet, or panels of
   * which none has mounted yet. */
  function scene(root, t) {
    var n = w.__grafanaRunningQueryCount;
    if (typeof n === 'number' && n > 0) return 'queries';
    var seen = new Set(), budget = 20000, panels = 0, active = 0, pending = 0, vars = 0;
    (function visit(x) {
      if (!x || typeof x !== 'object' || seen.has(x) || --budget < 0) return;
      seen.add(x);
      var s = x.state;
      if (!s || typeof s !== 'object') return;
      if (typeof s.pluginId === 'string' && typeof x.isActive === 'boolean') {
        panels++;
        if (x.isActive) {
          active++;
          var p = s.$data;
          var ds = p && p.state && p.state.data ? p.state.data.state : undefined;
          if (p && !(typeof ds === 'string' && TERMINAL[ds])) pending++;
        }
      }
      if (s.loading === true && typeof s.name === 'string') vars++;
      if (typeof x.forEachChild === 'function') {
        try { x.forEachChild(visit); } catch (e) { /* a scene we cannot walk */ }
      }
    })(root);
    if (!st.sceneAt) st.sceneAt = t;
    if (vars) return 'variables';
    if (pending) return 'panels';
    if (panels && !active && t - st.sceneAt < o.mountMs) return 'panels';
    return null;
  }

  function visible(el) {
    if (/(^|\s)preloader--done(\s|$)/.test(String(el.className))) return false;
    var cs = w.getComputedStyle(el);
    return cs.display !== 'none' && cs.visibility !== 'hidden' && cs.opacity !== '0';
  }

  /* A panel still loading, as its chrome shows it: the loading bar (10.x+)
   * or the header's spinner (8.x, 9.x); both exist only while Loading. */
  function loadingBar() {
    return d.querySelector('[aria-label="Panel loading bar"], .panel-loading') !== null;
  }

  /* Grafana's routes that show a dashboard or a panel. */
  var DASHBOARD = /\/(d|d-solo|d-embed|d-report|dashboard|dashboard-solo)\//;

  /* What the page is and which of Grafana's rules blocks: kind, rule. */
  function grafana(t) {
    var binding = w.__grafanaRenderBindingSupported === true;
    /* The newest Grafana says itself when a report's scene has settled;
     * it sends its message on report routes only. */
    if (binding && st.message) return { kind: 'binding', rule: null };
    if (binding && /\/d-report\//.test(location.pathname)) return { kind: 'binding', rule: 'binding' };
    if (w.__grafanaSceneContext) {
      var rule = scene(w.__grafanaSceneContext, t);
      return { kind: 'scenes', rule: rule || (loadingBar() ? 'panels' : null) };
    }
    var n = d.querySelectorAll('.panel-solo').length ||
            d.querySelectorAll("[class$='panel-container']").length;
    var r = w.panelsRendered;
    if (n > 0 || typeof r === 'number')
      return { kind: 'panels', rule: typeof r === 'number' && r >= n && !loadingBar() ? null : 'panels' };
    if (w.grafanaBootData) {
      /* Grafana before its dashboard: the preloader (the app starting),
       * then on a dashboard route the page loader while the dashboard is
       * fetched and its scene built, until the page has been still for
       * bootQuietMs (a route that turned out to show no dashboard). */
      var pre = d.querySelector('.preloader');
      if ((pre && visible(pre)) || d.documentElement.classList.contains('fs-loading'))
        return { kind: 'boot', rule: 'boot' };
      if (DASHBOARD.test(location.pathname) && t - Math.max(st.changed, st.busyEnd) < o.bootQuietMs)
        return { kind: 'boot', rule: 'boot' };
    }
    return { kind: 'none', rule: null };
  }

  /* A page's own short timers still to fire (ready.js keeps them). */
  function timerDue(t) {
    var due = false;
    st.timers.forEach(function (at, id) {
      if (at < t) st.timers.delete(id);
      else due = true;
    });
    return due;
  }

  return new Promise(function (resolve) {
    var start = performance.now(), last = start, due = start;
    var kind = 'none', rule = null, blocked = {}, done = false, timer = 0;
    /* Since when Grafana's rules (not busy or paint) have held. */
    var signalSince = -1;
    /* A task posted once the rules held has run: work the page had queued
     * by then (a framework's scheduled commit) is done. */
    var posted = false, confirmed = false;
    var confirm = new MessageChannel();

    function finish(ready) {
      if (done) return;
      done = true;
      st.clearTimeout.call(w, timer);
      confirm.port1.close();
      for (var k in blocked) blocked[k] = Math.round(blocked[k]);
      resolve({ ready: ready, kind: kind, rule: ready ? null : rule, blocked: blocked,
                waited: Math.round(performance.now() - start), grafana: !!w.grafanaBootData });
    }

    function look() {
      if (done) return;
      var t = performance.now();
      /* The poll overdue: the main thread has been busy since it was due
       * (a look from the confirming message runs as soon as a task ends,
       * before the late poll can say so itself). */
      if (t - due > o.lagMs) st.busyEnd = Math.max(st.busyEnd, t);
      if (rule) blocked[rule] = (blocked[rule] || 0) + (t - last);
      last = t;
      var g;
      try {
        g = grafana(t);
      } catch (e) {
        /* A page whose signals throw when read has none we can use. */
        g = { kind: 'none', rule: null };
      }
      kind = g.kind;
      rule = g.rule;
      signalSince = rule ? -1 : signalSince < 0 ? t : signalSince;
      /* A page that keeps its main thread busy or its DOM changing is
       * taken as it is once Grafana's rules have held for settleMaxMs. */
      var settled = signalSince >= 0 && t - signalSince >= o.settleMaxMs;
      if (!rule && !settled && t - st.busyEnd < o.busyMs) rule = 'busy';
      /* Without any signal, work a timer will start is the only sign that
       * more is to come: that is the grace of such a page. */
      if (!rule && !settled && kind === 'none' && timerDue(t)) rule = 'grace';
      if (rule) {
        posted = confirmed = false;
      } else {
        if (!posted) {
          posted = true;
          confirm.port2.postMessage(0);
        }
        /* The DOM (and its layout) unchanged for quietMs, longer than a
         * frame: what the capture draws is what the page shows. */
        if (settled || (confirmed && t - st.changed >= o.quietMs)) return finish(true);
        rule = 'paint';
      }
      if (t - start >= o.waitMs) finish(false);
    }

    confirm.port1.onmessage = function () {
      if (posted) confirmed = true;
      look();
    };

    function poll() {
      var t = performance.now();
      /* A timer this late means the main thread was busy in between (work
       * cut in pieces too short for the longtask observer). */
      if (t - due > o.lagMs) st.busyEnd = Math.max(st.busyEnd, t);
      look();
      if (!done) {
        /* Next look when the DOM will have been quiet long enough, or the
         * next poll, whichever comes first. */
        var next = o.pollMs;
        if (!rule || rule === 'paint') next = Math.max(1, Math.min(next, st.changed + o.quietMs - t + 1));
        due = t + next;
        timer = st.setTimeout.call(w, poll, next);
      }
    }

    poll();
  });
})
