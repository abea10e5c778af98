/* A hand-written stand-in for Grafana's frontend bundle, for the readiness
 * tests (tests/integration/test_readiness.py). It loads a dashboard the way
 * Grafana 8-12 does, as docs/grafana-signals.md describes it: the same
 * globals set at the same moments, scene objects shaped like @grafana/scenes'
 * ones where a renderer can read them, the same DOM (preloader, page loader,
 * panel chrome, loading bar), real requests for every query, and busy loops
 * for CPU work. It is parameterised by the page's query string; nothing in it
 * knows which renderer is looking.
 *
 * Parameters (all optional):
 *   mode=scenes|legacy   scenes dashboard (Grafana 10.x-12) or legacy (8-10)
 *   n=2                  panels; q=100 each query's time (ms), qI for panel I
 *   vars=0|1             one query variable every panel depends on; var_ms=80
 *   ds=0, dskind=idle|fetch|cpu
 *                        time the panels' datasource takes to resolve the first
 *                        time (getDataSource): a wait, a module fetch, or CPU
 *   boot=0, chunks=0|1, cpu_at=init|transform
 *                        CPU before the scene exists: one task, or 10 ms tasks
 *                        yielding with setTimeout(0); during app init (the
 *                        preloader is up) or after the dashboard JSON arrived
 *   dash_ms=20           the dashboard JSON request
 *   pre=0|1, pre_ms=20   a controller query that ran and completed on this page
 *                        before the dashboard scene was activated (the global
 *                        count is then 0, not undefined, when the context appears)
 *   anno=0|1, anno_ms=30 the built-in annotation layer runs on activation
 *   text=0|1             text panels only: no query, nothing registered
 *   lazy=0|1, below=N    lazy grid; panels from index N sit below the fold
 *   err=I                panel I's query fails (HTTP 500)
 *   stream=I, stream_kind=sse|fetch|ws
 *                        panel I streams: EventSource, a streaming fetch, or
 *                        Grafana Live's WebSocket; its connection never ends
 *   rerender=0|1         legacy: panel 0 renders twice with data
 *   hold=0|1             panel 0's plugin holds render readiness until its
 *                        frame is drawn (newest Grafana, render targets only)
 *   hold_ms=300, plugin_ms=0 (panel plugin module fetch; 0 = cached)
 *   load_ms=0            an app plugin preloaded during init with a script tag
 *                        that takes this long: it holds the load event back
 */
(function () {
  'use strict';

  // The entry module's first statement (public/app/index.ts).
  window.__grafana_app_bundle_loaded = true;

  var P = new URLSearchParams(location.search);
  function num(k, d) {
    var v = P.get(k);
    return v === null || v === '' ? d : Number(v);
  }
  var cfg = {
    mode: P.get('mode') || 'scenes',
    n: num('n', 2),
    q: num('q', 100),
    vars: num('vars', 0),
    varMs: num('var_ms', 80),
    ds: num('ds', 0),
    dskind: P.get('dskind') || 'idle',
    boot: num('boot', 0),
    chunks: num('chunks', 0),
    cpuAt: P.get('cpu_at') || 'init',
    dashMs: num('dash_ms', 20),
    pre: num('pre', 0),
    preMs: num('pre_ms', 20),
    anno: num('anno', 0),
    annoMs: num('anno_ms', 30),
    text: num('text', 0),
    lazy: P.get('lazy'),
    below: num('below', -1),
    err: num('err', -1),
    stream: num('stream', -1),
    streamKind: P.get('stream_kind') || 'sse',
    rerender: num('rerender', 0),
    hold: num('hold', 0),
    holdMs: num('hold_ms', 300),
    pluginMs: num('plugin_ms', 0),
    loadMs: num('load_ms', 0),
  };
  var solo = location.pathname.indexOf('/d-solo/') === 0;
  var boot = window.grafanaBootData || {};
  var user = boot.user || {};

  // The colour each panel paints once its data is drawn (the test knows them).
  var COLOURS = ['#e02f44', '#3274d9', '#56a64b', '#ff9830', '#a352cc', '#f2cc0c', '#00b8d9', '#ff6fb7'];

  // ---- scheduling: what React and the browser do between steps ----------------
  var channel = new MessageChannel(), effects = [];
  channel.port1.onmessage = function () {
    var fn = effects.shift();
    if (fn) fn();
  };
  // A passive effect: runs in its own task after the commit that scheduled it.
  function effect(fn) {
    effects.push(fn);
    channel.port2.postMessage(0);
  }
  function burn(ms) {
    var end = performance.now() + ms;
    while (performance.now() < end) { /* the main thread is busy */ }
  }
  // CPU work of `ms`, in one task or in 10 ms tasks that yield.
  function cpu(ms, chunked, done) {
    if (!chunked) {
      burn(ms);
      done();
      return;
    }
    (function slice(left) {
      burn(Math.min(10, left));
      if (left > 10) setTimeout(function () { slice(left - 10); }, 0);
      else done();
    })(ms);
  }
  function api(path, opts) {
    return fetch(path, opts).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
    });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  // ---- the scenes object model (@grafana/scenes, SceneObjectBase) -------------
  function SceneObject(state) {
    this.state = state || {};
    this.parent = undefined;
    this.isActive = false;
    this._handlers = [];
    this._listeners = [];
    var self = this;
    this.forEachChild(function (c) { c.parent = self; });
  }
  SceneObject.prototype.setState = function (patch) {
    var prev = this.state, self = this;
    this.state = Object.assign({}, this.state, patch);
    this.forEachChild(function (c) { c.parent = self; });
    this._listeners.slice().forEach(function (l) { l(self.state, prev); });
  };
  SceneObject.prototype.subscribeToState = function (fn) { this._listeners.push(fn); };
  SceneObject.prototype.addActivationHandler = function (fn) { this._handlers.push(fn); };
  // Own handlers first, then $timeRange, $variables, $data, $behaviors.
  SceneObject.prototype.activate = function () {
    if (this.isActive) return;
    this.isActive = true;
    this._handlers.forEach(function (h) { h(); });
    var s = this.state;
    if (s.$variables) s.$variables.activate();
    if (s.$data) s.$data.activate();
    (s.$behaviors || []).forEach(function (b) { b.activate(); });
  };
  SceneObject.prototype.forEachChild = function (fn) {
    var s = this.state;
    Object.keys(s).forEach(function (k) {
      var v = s[k];
      if (v instanceof SceneObject) fn(v);
      else if (Array.isArray(v)) v.forEach(function (x) { if (x instanceof SceneObject) fn(x); });
    });
  };
  function sub(Base, name, init) {
    function C(state) { Base.call(this, state); if (init) init.call(this); }
    C.prototype = Object.create(Base.prototype);
    C.prototype.constructor = C;
    Object.defineProperty(C, 'name', { value: name });
    return C;
  }

  // SceneQueryController: the window-global running-query count.
  var SceneQueryController = sub(SceneObject, 'SceneQueryController', function () {
    this.isQueryController = true;
    this.running = [];
  });
  SceneQueryController.prototype.queryStarted = function (entry) {
    this.running.push(entry);
    window.__grafanaRunningQueryCount = (window.__grafanaRunningQueryCount === undefined ? 0 : window.__grafanaRunningQueryCount) + 1;
    if (!this.state.isRunning) this.setState({ isRunning: true });
    profiler.queryStarted();
  };
  SceneQueryController.prototype.queryCompleted = function (entry) {
    var i = this.running.indexOf(entry);
    if (i < 0) return;
    this.running.splice(i, 1);
    window.__grafanaRunningQueryCount = (window.__grafanaRunningQueryCount === undefined ? 0 : window.__grafanaRunningQueryCount) - 1;
    if (this.running.length === 0) this.setState({ isRunning: false });
    profiler.queryCompleted(this.running.length);
  };
  function findController(obj) {
    for (var o = obj; o; o = o.parent) {
      var b = (o.state.$behaviors || []).filter(function (x) { return x.isQueryController; });
      if (b.length) return b[0];
    }
    return undefined;
  }
  // registerQueryWithController: counted from the start until the first packet
  // whose state is not Loading (Done, Error, Streaming).
  function registered(origin, type, onPacket) {
    var ctl = findController(origin), entry = { type: type, origin: origin }, open = true;
    if (ctl) ctl.queryStarted(entry);
    return function (packet) {
      if (open && packet.state !== 'Loading') {
        open = false;
        if (ctl) ctl.queryCompleted(entry);
      }
      onPacket(packet);
    };
  }

  // Datasources: getDataSource resolves at once when loaded (a microtask), the
  // panels' datasource the first time after cfg.ds.
  var dsLoads = {};
  function getDataSource(uid) {
    if (uid !== 'panel-ds' || cfg.ds <= 0) return Promise.resolve(uid);
    if (!dsLoads[uid]) {
      dsLoads[uid] = new Promise(function (resolve) {
        if (cfg.dskind === 'fetch') {
          fetch('/public/plugins/' + uid + '/module.js?delay=' + cfg.ds).then(function (r) { return r.text(); })
            .then(function () { resolve(uid); });
        } else if (cfg.dskind === 'cpu') {
          setTimeout(function () { cpu(cfg.ds, false, function () { resolve(uid); }); }, 0);
        } else {
          setTimeout(function () { resolve(uid); }, cfg.ds);
        }
      });
    }
    return dsLoads[uid];
  }

  // A query through /api/ds/query: a Loading packet, then Done or Error.
  function runRequest(panelIndex, ms, onPacket) {
    onPacket({ state: 'Loading', series: [] });
    var body = JSON.stringify({ queries: [{ refId: 'A', datasource: { uid: 'panel-ds' }, panel: panelIndex }] });
    var fail = panelIndex === cfg.err ? '&status=500' : '';
    api('/api/ds/query?delay=' + ms + '&panel=' + panelIndex + fail, { method: 'POST', body: body,
                                                                     headers: { 'Content-Type': 'application/json' } })
      .then(function (r) {
        if (r.ok) onPacket({ state: 'Done', series: r.body.results.A.frames });
        else onPacket({ state: 'Error', series: [], errors: [{ message: r.body.message || 'query failed' }] });
      }, function (e) {
        onPacket({ state: 'Error', series: [], errors: [{ message: String(e) }] });
      });
  }

  // A streaming query: Streaming packets for as long as the connection lives.
  function runStream(panelIndex, onPacket) {
    onPacket({ state: 'Loading', series: [] });
    var seq = 0;
    function packet() { onPacket({ state: 'Streaming', series: [{ seq: seq++ }] }); }
    if (cfg.streamKind === 'ws') {
      var ws = new WebSocket('ws://' + location.host + '/api/live/ws');
      ws.onmessage = packet;
    } else if (cfg.streamKind === 'fetch') {
      fetch('/api/ds/stream?panel=' + panelIndex).then(function (r) {
        var reader = r.body.getReader();
        (function read() {
          reader.read().then(function (x) {
            if (x.done) return;
            packet();
            read();
          });
        })();
      });
    } else {
      new EventSource('/api/live/sse?panel=' + panelIndex).onmessage = packet;
    }
  }

  // SceneVariableSet with query variables.
  var QueryVariable = sub(SceneObject, 'QueryVariable');
  QueryVariable.prototype.validateAndUpdate = function (done) {
    var self = this;
    this.setState({ loading: true, error: null });
    getDataSource('var-ds').then(function () {
      var next = registered(self, 'QueryVariable/getValueOptions', function (p) {
        if (p.state === 'Loading') return;
        self.setState({ options: [{ label: 'a', value: 'a' }], value: 'a', text: 'a', loading: false });
        done();
      });
      next({ state: 'Loading' });
      api('/api/ds/query?delay=' + cfg.varMs + '&variable=' + self.state.name, { method: 'POST', body: '{}' })
        .then(function () { next({ state: 'Done' }); }, function () { next({ state: 'Error' }); });
    });
  };
  var SceneVariableSet = sub(SceneObject, 'SceneVariableSet');
  SceneVariableSet.prototype.activate = function () {
    if (this.isActive) return;
    SceneObject.prototype.activate.call(this);
    var self = this;
    this.state.variables.forEach(function (v) {
      v.activate();
      v.validateAndUpdate(function () { self.notify(v); });
    });
  };
  SceneVariableSet.prototype.anyLoading = function () {
    return this.state.variables.some(function (v) { return v.state.loading; });
  };
  // _notifyDependentSceneObjects: walk the active scene.
  SceneVariableSet.prototype.notify = function (variable) {
    (function walk(o) {
      if (!o.isActive) return;
      if (o.onVariableUpdateCompleted) o.onVariableUpdateCompleted(variable);
      o.forEachChild(walk);
    })(this.parent);
  };

  // The annotation layer of the dashboard's $data.
  var AnnotationsDataLayer = sub(SceneObject, 'AnnotationsDataLayer');
  AnnotationsDataLayer.prototype.activate = function () {
    if (this.isActive) return;
    SceneObject.prototype.activate.call(this);
    var self = this;
    getDataSource('grafana').then(function () {
      var next = registered(self, 'AnnotationsDataLayer/annotationsLoading', function (p) {
        self.setState({ data: { state: p.state, series: [] } });
      });
      next({ state: 'Loading' });
      api('/api/annotations?delay=' + cfg.annoMs).then(function () { next({ state: 'Done' }); },
                                                      function () { next({ state: 'Error' }); });
    });
  };
  var DashboardDataLayerSet = sub(SceneObject, 'DashboardDataLayerSet');
  DashboardDataLayerSet.prototype.activate = function () {
    if (this.isActive) return;
    SceneObject.prototype.activate.call(this);
    this.state.annotationLayers.forEach(function (l) { if (l.state.isEnabled) l.activate(); });
  };

  // SceneQueryRunner: the panel's $data.
  var SceneQueryRunner = sub(SceneObject, 'SceneQueryRunner', function () { this.gen = 0; });
  SceneQueryRunner.prototype.activate = function () {
    if (this.isActive) return;
    SceneObject.prototype.activate.call(this);
    this.runQueries();
  };
  SceneQueryRunner.prototype.variables = function () {
    for (var o = this; o; o = o.parent) if (o.state.$variables) return o.state.$variables;
    return undefined;
  };
  SceneQueryRunner.prototype.onVariableUpdateCompleted = function () { this.runQueries(); };
  SceneQueryRunner.prototype.runQueries = function () {
    var self = this, vars = this.variables(), gen = ++this.gen;
    if (this.state.dependsOnVariables && vars && vars.anyLoading()) {
      this.setState({ data: Object.assign({ series: [] }, this.state.data, { state: 'Loading' }) });
      return;
    }
    getDataSource('panel-ds').then(function () {
      if (gen !== self.gen || !self.isActive) return;
      var i = self.state.panelIndex;
      var next = registered(self, 'SceneQueryRunner/runQueries', function (p) { self.onData(p); });
      if (i === cfg.stream) runStream(i, next);
      else runRequest(i, num('q' + i, cfg.q), next);
    });
  };
  SceneQueryRunner.prototype.onData = function (p) {
    var fetched = this.state._hasFetchedData || p.state !== 'Loading';
    this.setState({ data: { state: p.state, series: p.series, errors: p.errors }, _hasFetchedData: fetched });
  };
  SceneQueryRunner.prototype.isDataReadyToDisplay = function () { return Boolean(this.state._hasFetchedData); };

  // VizPanel: loads its plugin, then its $data runs.
  var VizPanel = sub(SceneObject, 'VizPanel');
  VizPanel.prototype.activate = function () {
    if (this.isActive) return;
    var self = this;
    this.addActivationHandler(function () { self.loadPlugin(); });
    SceneObject.prototype.activate.call(this);
  };
  VizPanel.prototype.loadPlugin = function () {
    var self = this;
    if (cfg.pluginMs <= 0) {
      this.plugin = { id: this.state.pluginId, skipDataQuery: this.state.pluginId === 'text' };
      return;
    }
    fetch('/public/plugins/panel-' + this.state.pluginId + '/module.js?delay=' + cfg.pluginMs)
      .then(function (r) { return r.text(); })
      .then(function () {
        self.plugin = { id: self.state.pluginId, skipDataQuery: self.state.pluginId === 'text' };
        self.setState({ _pluginLoaded: true });
      });
  };
  VizPanel.prototype.getData = function () {
    if (!this.plugin || this.plugin.skipDataQuery || !this.state.$data || !this.state.$data.state.data)
      return { state: 'Done', series: [] };       // emptyPanelData
    return this.state.$data.state.data;
  };

  var DashboardGridItem = sub(SceneObject, 'DashboardGridItem');
  var SceneGridLayout = sub(SceneObject, 'SceneGridLayout');
  var DefaultGridLayoutManager = sub(SceneObject, 'DefaultGridLayoutManager');
  var DashboardScene = sub(SceneObject, 'DashboardScene');

  // ---- the scenes profiler and the render-readiness observer (newest) ---------
  var POST_STORM_WINDOW = 2000;
  var profiler = {
    started: false, timer: null, observers: [],
    queryStarted: function () {
      this.started = true;
      clearTimeout(this.timer);
    },
    queryCompleted: function (running) {
      var self = this;
      if (running !== 0 || !this.started) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(function () {
        self.observers.forEach(function (o) { o('dashboard_view'); });
      }, POST_STORM_WINDOW);
    },
  };
  function isRenderTarget() {
    return typeof window.__grafanaImageRendererMessageChannel === 'function' || user.authenticatedBy === 'render';
  }
  function sceneSettled(scene) {
    var vars = scene.state.$variables;
    if (vars && vars.anyLoading()) return false;
    var settled = true;
    (function walk(o) {
      if (o instanceof VizPanel && o.isActive && o.state.$data) {
        var d = o.state.$data.state.data;
        if (!d || ['Done', 'Error', 'Streaming'].indexOf(d.state) < 0) settled = false;
      }
      o.forEachChild(walk);
    })(scene);
    return settled;
  }
  function observeRenderReadiness(scene) {
    if (!window.__grafanaRenderBindingSupported || !isRenderTarget()) return;
    profiler.observers.push(function (interaction) {
      if (interaction !== 'dashboard_view') return;
      var deadline = Date.now() + 20000;
      (function poll() {
        if (sceneSettled(scene) || Date.now() >= deadline) {
          if (typeof window.__grafanaImageRendererMessageChannel === 'function')
            window.__grafanaImageRendererMessageChannel(JSON.stringify({ type: 'REPORT_RENDER_COMPLETE', data: { success: true } }));
          return;
        }
        setTimeout(poll, 500);
      })();
    });
  }
  // holdRenderReadiness: a 'plugin' entry on the scene's query controller.
  function holdRenderReadiness() {
    var scene = window.__grafanaSceneContext, ctl = scene && findController(scene), entry = { type: 'plugin', origin: scene };
    if (!isRenderTarget() || !ctl) return function () {};
    ctl.queryStarted(entry);
    var released = false, timer = setTimeout(release, 5000);
    function release() {
      if (released) return;
      released = true;
      clearTimeout(timer);
      ctl.queryCompleted(entry);
    }
    return release;
  }

  // ---- layout and panel DOM ---------------------------------------------------
  function panelTop(i) {
    var row = Math.floor(i / 2);
    if (cfg.below >= 0 && i >= cfg.below) return 8 + 1400 + (row - Math.floor(cfg.below / 2)) * 208;
    return 8 + row * 208;
  }
  function gridItemElement(i) {
    var item = el('div', 'react-grid-item');
    item.setAttribute('data-panelid', String(i + 1));
    item.style.top = panelTop(i) + 'px';
    item.style.height = '200px';
    item.style.width = 'calc((100% - 24px) / 2)';
    item.style.left = i % 2 ? 'calc(16px + (100% - 24px) / 2)' : '8px';
    return item;
  }
  function canvasHeight() {
    var h = 8;
    for (var i = 0; i < cfg.n; i++) h = Math.max(h, panelTop(i) + 208);
    return h;
  }
  function drawViz(canvas, i, seq) {
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(canvas.clientWidth * dpr));
    canvas.height = Math.max(1, Math.round(canvas.clientHeight * dpr));
    var g = canvas.getContext('2d');
    g.fillStyle = COLOURS[i % COLOURS.length];
    g.fillRect(0, 0, canvas.width, canvas.height);
    if (seq !== undefined) {          // a streaming graph keeps moving
      g.fillStyle = '#ffffff';
      g.fillRect(canvas.width - 12 + (seq % 10), canvas.height - 4, 1, 4);
    }
  }
  // One panel's chrome, redrawn from its state (what PanelChrome renders).
  function PanelView(i, title, getState) {
    this.i = i;
    this.title = title;
    this.getState = getState;
    this.root = el('section', 'panel css-1a2b3c-panel-container');
    this.root.setAttribute('data-testid', 'data-testid Panel header ' + title);
    this.bar = this.root.appendChild(el('div', 'loading-bar-container css-4d5e6f-loadingBarContainer'));
    var header = this.root.appendChild(el('div', 'panel-header css-7g8h9i-panel-header'));
    header.appendChild(el('h2', '', title));
    this.status = header.appendChild(el('div', 'panel-header-status'));
    this.content = this.root.appendChild(el('div', 'panel-content css-0j1k2l-panel-content'));
    this.drawn = null;
  }
  PanelView.prototype.render = function () {
    var s = this.getState(), self = this;
    // loading indicator: the bar (10.x+) or the header spinner (legacy)
    this.bar.textContent = '';
    this.status.textContent = '';
    if (s.loadingState === 'Loading') {
      if (cfg.mode === 'legacy') this.status.appendChild(el('div', 'panel-loading'));
      else {
        var bar = this.bar.appendChild(el('div', 'loading-bar'));
        bar.appendChild(el('div')).setAttribute('aria-label', 'Panel loading bar');
      }
    } else if (s.loadingState === 'Streaming') {
      this.status.appendChild(el('div', 'panel-streaming')).title = 'Streaming';
    } else if (s.loadingState === 'Error') {
      this.status.appendChild(el('div', 'panel-status-error')).setAttribute('data-testid', 'data-testid Panel status error');
    }
    if (s.pluginLoading) {
      if (!this.content.firstChild) this.content.appendChild(el('div', 'plugin-loading', 'Loading plugin panel...'));
      return;
    }
    if (!s.ready) {
      this.content.textContent = '';
      this.drawn = null;
      return;
    }
    // The visualisation: a canvas drawn after the commit, as uPlot draws.
    var canvas = this.content.querySelector('canvas');
    if (!canvas) {
      this.content.textContent = '';
      canvas = this.content.appendChild(el('canvas'));
    }
    var seq = s.seq;
    requestAnimationFrame(function () {
      drawViz(canvas, self.i, seq);
      self.drawn = true;
      if (s.onDrawn) s.onDrawn();
    });
  };

  // ---- the app ---------------------------------------------------------------
  var root = document.getElementById('reactRoot');

  function mountAppWrapper(next) {
    // AppWrapper.componentDidMount: ready, the preloader goes, routes render.
    effect(function () {
      var pre = document.querySelector('.preloader');
      if (pre) pre.parentNode.removeChild(pre);
      var loader = root.appendChild(el('div', 'page-loader', 'Loading ...'));
      loader.appendChild(el('div', 'spinner')).setAttribute('data-testid', 'Spinner');
      effect(next);
    });
  }

  function loadDashboard(next) {
    var uid = location.pathname.split('/')[2] || 'fixture';
    api('/api/dashboards/uid/' + uid + '?delay=' + cfg.dashMs).then(function (r) {
      var after = function () { burn(5); next(r.body); };        // JSON -> model
      if (cfg.cpuAt === 'transform' && cfg.boot > 0) cpu(cfg.boot, cfg.chunks, after);
      else after();
    });
  }

  function buildScene() {
    var isLazy = cfg.lazy !== null ? cfg.lazy === '1' : !(user.authenticatedBy === 'render');
    var variables = [];
    for (var v = 0; v < cfg.vars; v++) variables.push(new QueryVariable({ name: 'var' + v, type: 'query', loading: false }));
    var items = [];
    for (var i = 0; i < cfg.n; i++) {
      var text = cfg.text === 1;
      var panel = new VizPanel({
        key: 'panel-' + (i + 1), title: 'Panel ' + (i + 1), pluginId: text ? 'text' : 'timeseries',
        $data: text ? undefined : new SceneQueryRunner({ panelIndex: i, queries: [{ refId: 'A' }],
                                                         dependsOnVariables: cfg.vars > 0, data: undefined }),
      });
      panel.index = i;
      items.push(new DashboardGridItem({ key: 'grid-item-' + (i + 1), body: panel }));
    }
    var scene = new DashboardScene({
      title: 'Fixture', uid: location.pathname.split('/')[2],
      $variables: new SceneVariableSet({ variables: variables }),
      $data: new DashboardDataLayerSet({ annotationLayers: [new AnnotationsDataLayer({ name: 'Annotations & Alerts', isEnabled: cfg.anno === 1 })] }),
      $behaviors: [new SceneQueryController({ isRunning: false })],
      body: new DefaultGridLayoutManager({ grid: new SceneGridLayout({ isLazy: isLazy, children: items }) }),
    });
    scene.addActivationHandler(function () {
      window.__grafanaSceneContext = scene;
    });
    return scene;
  }

  // One panel mounted: its chrome committed, then (effect) it activates.
  function mountScenePanel(container, panel) {
    var view = new PanelView(panel.index, panel.state.title, function () {
      var data = panel.getData();
      return {
        loadingState: data.state,
        pluginLoading: !panel.plugin,
        ready: panel.plugin && (panel.plugin.skipDataQuery || panel.state.$data.isDataReadyToDisplay()) &&
               !(cfg.hold && panel.index === 0 && !panel.tilesLoaded),
        seq: data.series && data.series[0] && data.series[0].seq,
        onDrawn: panel.onDrawn,
      };
    });
    var wrapper = el('div', 'viz-wrapper');
    wrapper.setAttribute('data-viz-panel-key', panel.state.key);
    wrapper.appendChild(view.root);
    container.appendChild(wrapper);
    var rerender = function () { view.render(); };
    panel.subscribeToState(rerender);
    if (panel.state.$data) panel.state.$data.subscribeToState(function (s, prev) {
      rerender();
      if (cfg.hold && panel.index === 0 && s.data && s.data.state === 'Done' && !(prev.data && prev.data.state === 'Done')) {
        // a map-like plugin: its picture needs tiles; on a render target it
        // holds the render until the frame with them is drawn
        effect(function () {
          var release = holdRenderReadiness();
          fetch('/public/tiles/0.png?delay=' + cfg.holdMs).then(function (r) { return r.arrayBuffer(); })
            .then(function () {
              panel.tilesLoaded = true;
              view.render();
              requestAnimationFrame(function () { requestAnimationFrame(release); });
            });
        });
      }
    });
    view.render();
    effect(function () {
      panel.parent.activate();           // the grid item
      panel.activate();
      view.render();
    });
  }

  // LazyLoader (mount mode): a placeholder holding a nbsp until it intersects.
  var lazyObserver = null, lazyCallbacks = {};
  function lazyLoad(item, mount) {
    if (!lazyObserver) {
      lazyObserver = new IntersectionObserver(function (entries) {
        entries.forEach(function (e) { if (lazyCallbacks[e.target.id]) lazyCallbacks[e.target.id](e); });
      }, { rootMargin: '100px' });
    }
    var holder = item.appendChild(el('div', 'lazy-loader'));
    holder.id = 'lazy-' + Math.random().toString(36).slice(2);
    holder.textContent = '\u00a0';
    var loaded = false;
    lazyCallbacks[holder.id] = function (e) {
      if (!loaded && e.isIntersecting) {
        loaded = true;
        holder.textContent = '';
        mount(holder);
      }
    };
    effect(function () { lazyObserver.observe(holder); });
  }

  function renderScene(scene) {
    // The page commits the dashboard container; the scene activates in its
    // mount effect; the body and the panels come in the commits after.
    root.textContent = '';
    var canvasEl = root.appendChild(el('div', 'dashboard-canvas'));
    effect(function () {
      scene.activate();
      effect(function () {
        scene.state.body.activate();
        var grid = scene.state.body.state.grid;
        grid.activate();
        canvasEl.style.height = canvasHeight() + 'px';
        var mounts = [];
        grid.state.children.forEach(function (item, i) {
          var panel = item.state.body;
          if (solo) {
            if (i !== 0) return;
            var soloEl = canvasEl.appendChild(el('div', 'panel-solo'));
            canvasEl.style.height = '100%';
            root.style.height = '100%';
            mounts.push(function () { mountScenePanel(soloEl, panel); });
            return;
          }
          var itemEl = canvasEl.appendChild(gridItemElement(i));
          if (grid.state.isLazy) lazyLoad(itemEl, function (holder) { mountScenePanel(holder, panel); });
          else mounts.push(function () { mountScenePanel(itemEl, panel); });
        });
        mounts.forEach(function (m) { m(); });
      });
    });
  }

  // ---- legacy dashboards (DashboardGrid, PanelStateWrapper, profiler) ---------
  function renderingCompleted() {
    window.panelsRendered = (window.panelsRendered || 0) + 1;
  }
  function renderLegacy() {
    root.textContent = '';
    var canvasEl = root.appendChild(el('div', 'dashboard-canvas'));
    canvasEl.style.height = canvasHeight() + 'px';
    for (var i = 0; i < cfg.n; i++) {
      (function (i) {
        var itemEl = canvasEl.appendChild(gridItemElement(i));
        var mount = function (container) {
          var state = { data: { state: 'NotStarted' }, renders: 0 };
          var view = new PanelView(i, 'Panel ' + (i + 1), function () {
            var ls = state.data.state;
            var ready = ls === 'Done' || ls === 'Error' || ls === 'Streaming';
            // PanelStateWrapper counts a render with data, during the render
            if (ready) renderingCompleted();
            return { loadingState: ls, ready: ready, seq: state.data.series && state.data.series[0] && state.data.series[0].seq };
          });
          container.appendChild(view.root);
          view.render();
          effect(function () {                           // initPanelState, then the query
            var onPacket = function (p) {
              state.data = p;
              view.render();
              if (cfg.rerender && i === 0 && p.state === 'Done')
                effect(function () { view.render(); });  // e.g. a resize: a second render with data
            };
            if (i === cfg.stream) runStream(i, onPacket);
            else runRequest(i, num('q' + i, cfg.q), onPacket);
          });
        };
        if (cfg.lazy === '1') lazyLoad(itemEl, mount);
        else mount(itemEl);
      })(i);
    }
  }

  // ---- boot ------------------------------------------------------------------
  function previousSceneQuery(next) {
    // a scene query that ran (and finished) on this page before the dashboard's
    var ctl = new SceneQueryController({ isRunning: false });
    var holder = new SceneObject({ $behaviors: [ctl] });
    var done = registered(holder, 'SceneQueryRunner/runQueries', function () {});
    done({ state: 'Loading' });
    api('/api/ds/query?delay=' + cfg.preMs + '&earlier=1', { method: 'POST', body: '{}' })
      .then(function () { done({ state: 'Done' }); next(); });
  }

  function start() {
    mountAppWrapper(function () {
      loadDashboard(function () {
        if (cfg.mode === 'legacy') {
          renderLegacy();
          return;
        }
        var scene = buildScene();
        observeRenderReadiness(scene);
        renderScene(scene);
      });
    });
  }

  // App init: CPU (module evaluation, config, plugin preloads) with the
  // preloader up, then the app mounts. An app plugin preloaded by inserting
  // its module's script tag keeps the load event back until it arrives;
  // Grafana does not wait for it.
  if (cfg.loadMs > 0) {
    var preload = document.createElement('script');
    preload.src = '/public/plugins/app-preload/module.js?delay=' + cfg.loadMs;
    document.head.appendChild(preload);
  }
  var initCpu = cfg.cpuAt === 'init' ? cfg.boot : 0;
  cpu(initCpu, cfg.chunks, function () {
    if (cfg.pre) previousSceneQuery(start);
    else start();
  });
})();
