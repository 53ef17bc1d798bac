/**
 * Shopguide web page: the shopper's single-page front-end (no build step, no dependencies).
 *
 *   1. DOM and formatting helpers. API text is untrusted: it only ever reaches the page
 *      through textContent / text nodes / setAttribute, never innerHTML.
 *   2. Session and API calls: a saved session ("shopguide.session"), else a demo session
 *      (POST /web/session), else a pasted shopper token or API key; every call sends
 *      "Authorization: Bearer …", and a 401 gets a new session once and is retried.
 *   3. Server-sent events over a POST response (fetch + ReadableStream + TextDecoder).
 *   4. Answers: streaming into a container, [n] citations as links, abstentions, comparisons.
 *   5. Views: search (#/), product (#/product/<id>), advice (#/advice), privacy (#/privacy).
 *   6. Router, language (follows what the shopper typed last, or the toggle), start-up.
 */

import { getLang, languageOf, locale, setLang, t, translateTree } from './i18n.js';

const SESSION_KEY = 'shopguide.session';
const DEMO_USER = /^demo-[0-9a-f]{16}$/;
const USER_ID = /^[A-Za-z0-9_.@-]{1,128}$/;
const PAGE_SIZE = 10;
const SIMILAR_SIZE = 6;

// ---------------------------------------------------------------------------------------
// 1. DOM and formatting helpers
// ---------------------------------------------------------------------------------------

/** An element with properties and children; strings become text nodes (never markup).
 * Props: text, i18n (key or [key, vars]), i18nAttr ({attr: key}), className, dataset,
 * style (an object, set through CSSOM: the page's CSP refuses style attributes), on<event>
 * handlers; anything else is an attribute (true → present, false/null → absent). */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name === 'i18n') setI18n(node, ...(Array.isArray(value) ? value : [value]));
    else if (name === 'i18nAttr') setI18nAttr(node, value);
    else if (name === 'className') node.className = value;
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'style') Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
    else if (name.startsWith('on') && typeof value === 'function') {
      node.addEventListener(name.slice(2), value);
    } else node.setAttribute(name, value === true ? '' : String(value));
  }
  node.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** Give `node` translated text that follows language changes. */
function setI18n(node, key, vars) {
  node.dataset.i18n = key;
  if (vars) node.dataset.i18nVars = JSON.stringify(vars);
  else delete node.dataset.i18nVars;
  node.textContent = t(key, vars);
}

/** Give `node` translated attributes ({attr: key or [key, vars]}) that follow the language. */
function setI18nAttr(node, map) {
  node.dataset.i18nAttr = JSON.stringify(map);
  for (const [attr, spec] of Object.entries(map)) {
    const [key, vars] = Array.isArray(spec) ? spec : [spec];
    node.setAttribute(attr, t(key, vars));
  }
}

/** A translated span. */
const tx = (key, vars) => h('span', { i18n: [key, vars] });

const enc = encodeURIComponent;
const productHref = (id) => `#/product/${enc(id)}`;
const passageHref = (productId, passageId) => `${productHref(productId)}?passage=${enc(passageId)}`;

/** An id attribute value made from a passage id ("p001#review-2" → "passage-p001-review-2"). */
function anchorId(passageId) {
  return `passage-${passageId.replace(/[^A-Za-z0-9_-]/g, (c) => `-${c === '#' ? '' : c.codePointAt(0).toString(16)}`)}`;
}

function randomHex(bytes) {
  const values = crypto.getRandomValues(new Uint8Array(bytes)); // works without https too
  return Array.from(values, (b) => b.toString(16).padStart(2, '0')).join('');
}

function formatMoney(value, currency) {
  if (value === null || value === undefined) return '';
  try {
    return new Intl.NumberFormat(locale(), { style: 'currency', currency: currency || 'USD' }).format(value);
  } catch {
    return `${Number(value).toFixed(2)} ${currency || ''}`.trim();
  }
}

function formatNumber(value, digits = 3) {
  return typeof value === 'number' ? Number(value.toFixed(digits)).toString() : String(value);
}

function formatTime(epochSeconds) {
  const date = new Date(epochSeconds * 1000);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString(locale());
}

/** An attribute value as indexer/units.py format_value writes it (booleans translated). */
function attributeValue(value) {
  if (typeof value === 'boolean') return tx(value ? 'value.yes' : 'value.no');
  return String(value);
}

function ratingNode(rating, reviewCount) {
  if (rating === null || rating === undefined) return null;
  return h('span', { className: 'rating', i18nAttr: { 'aria-label': ['rating.label', { r: rating }] } },
    h('span', { 'aria-hidden': 'true', text: `★ ${Number(rating).toFixed(1)}` }),
    reviewCount ? h('span', { className: 'muted', 'aria-hidden': 'true' }, ' ', tx('rating.reviews', { n: reviewCount })) : null);
}

function stockNode(inStock) {
  const key = inStock === true ? 'stock.in' : inStock === false ? 'stock.out' : 'stock.unknown';
  const tone = inStock === true ? 'ok' : inStock === false ? 'bad' : 'unknown';
  return h('span', { className: `badge stock-${tone}`, i18n: key });
}

/** Text with the code points [start, end) wrapped in <mark> (Python offsets count code
 * points; JavaScript strings count UTF-16 units, which differ beyond the BMP). */
function markedText(text, start, end, tag = 'mark') {
  const chars = Array.from(text);
  if (!(start >= 0 && end > start && end <= chars.length)) return [text];
  return [chars.slice(0, start).join(''), h(tag, {}, chars.slice(start, end).join('')), chars.slice(end).join('')];
}

const reducedMotion = () => window.matchMedia('(prefers-reduced-motion: reduce)').matches;

// ---------------------------------------------------------------------------------------
// 2. Session and API calls
// ---------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** A stream that ended without its final event. */
class CutOff extends Error {}

const auth = { current: null, renewal: null, signInWaiters: [] };

function readSavedSession() {
  try {
    const saved = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    return saved && typeof saved === 'object' ? saved : null;
  } catch {
    return null;
  }
}

function saveSession(session) {
  auth.current = session;
  try {
    localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    /* private mode: the session lasts for this page only */
  }
  renderWho();
}

const usable = (s) => Boolean(s && s.token && (!s.expires_at || s.expires_at > Date.now() + 60_000));

/** The shopper this page acts for (null with an API key and no shopper id). */
const currentUser = () => auth.current?.user_id || null;

/** The claims of a JWT, or null for anything else (an API key). */
function jwtClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='));
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/** A demo session for `previousUser` (kept the same shopper) or a new demo shopper; null
 * when the server has demo sessions off (404). */
async function startDemoSession(previousUser) {
  const body = previousUser && DEMO_USER.test(previousUser) ? { user_id: previousUser } : {};
  const response = await fetch('/web/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status === 404) return null;
  if (response.status === 422 && body.user_id) return startDemoSession(null);
  if (!response.ok) throw await apiError(response);
  const data = await response.json();
  const session = {
    token: data.token,
    user_id: data.user_id,
    expires_at: Date.now() + data.expires_in * 1000,
    demo: true,
  };
  saveSession(session);
  return session;
}

/** A usable session: the current one, the saved one, a demo one, or the sign-in form's.
 * With `renew`, the current token was refused (401): get another. Concurrent callers share
 * one renewal. */
function ensureSession({ renew = false } = {}) {
  if (!renew && usable(auth.current)) return Promise.resolve(auth.current);
  if (auth.renewal) return auth.renewal;
  auth.renewal = (async () => {
    const saved = auth.current || readSavedSession();
    if (!renew && usable(saved)) {
      auth.current = saved;
      renderWho();
      return saved;
    }
    const demo = await startDemoSession(saved?.user_id);
    if (demo) return demo;
    return waitForSignIn(renew && saved?.token ? 'auth.rejected' : 'auth.needed', saved);
  })().finally(() => {
    auth.renewal = null;
  });
  return auth.renewal;
}

/** Show the sign-in form and resolve with the session it makes. */
function waitForSignIn(reasonKey, saved) {
  const section = document.getElementById('signin');
  setI18n(document.getElementById('signin-reason'), reasonKey);
  const user = document.getElementById('auth-user');
  if (saved?.manual && saved.user_id && !user.value) user.value = saved.user_id;
  section.hidden = false;
  document.getElementById('auth-token').focus();
  return new Promise((resolve) => auth.signInWaiters.push(resolve));
}

function finishSignIn(session) {
  document.getElementById('signin').hidden = true;
  document.getElementById('auth-token').value = '';
  const waiters = auth.signInWaiters.splice(0);
  for (const resolve of waiters) resolve(session);
}

function onSignInSubmit(event) {
  event.preventDefault();
  const token = document.getElementById('auth-token').value.trim();
  const typedUser = document.getElementById('auth-user').value.trim();
  const reason = document.getElementById('signin-reason');
  if (!token) return;
  if (typedUser && !USER_ID.test(typedUser)) {
    setI18n(reason, 'error.invalid', { message: 'shopper id' });
    return;
  }
  const claims = jwtClaims(token);
  const session = {
    token,
    user_id: typedUser || (typeof claims?.sub === 'string' ? claims.sub : null),
    expires_at: typeof claims?.exp === 'number' ? claims.exp * 1000 : null,
    manual: true,
  };
  saveSession(session);
  finishSignIn(session);
}

async function onSignInDemo() {
  const reason = document.getElementById('signin-reason');
  try {
    const demo = await startDemoSession(readSavedSession()?.user_id);
    if (demo) finishSignIn(demo);
    else setI18n(reason, 'auth.demo_off');
  } catch (error) {
    showError(reason, error);
  }
}

function renderWho() {
  const who = document.getElementById('who');
  const session = auth.current;
  if (!who) return;
  if (!session) who.replaceChildren();
  else if (!session.user_id) setI18n(who, 'auth.who_key');
  else setI18n(who, session.demo ? 'auth.who_demo' : 'auth.who_user', { user: session.user_id });
}

async function apiError(response) {
  let code = 'http_error';
  let message = response.statusText || String(response.status);
  try {
    const body = await response.json();
    if (body?.error) ({ code, message } = body.error);
  } catch {
    /* not JSON */
  }
  const retry = Number.parseInt(response.headers.get('retry-after') || '', 10);
  return new ApiError(response.status, code, message, Number.isFinite(retry) ? retry : null);
}

/** fetch with the session's bearer token; a 401 gets a new session once and is retried. */
async function authorizedFetch(path, init = {}) {
  let session = await ensureSession();
  for (let attempt = 0; ; attempt += 1) {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${session.token}`);
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401 || attempt > 0) return response;
    // another call may have renewed it meanwhile
    session = usable(auth.current) && auth.current.token !== session.token
      ? auth.current
      : await ensureSession({ renew: true });
  }
}

/** A JSON API call; throws ApiError for an error response. */
async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { accept: 'application/json' };
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await authorizedFetch(path, init);
  if (!response.ok) throw await apiError(response);
  return response.json();
}

const isAbort = (error) => error?.name === 'AbortError';

/** The message key and values for an error. */
function describeError(error) {
  if (error instanceof ApiError) {
    const s = error.retryAfter ?? '…';
    if (error.code === 'model_not_ready') return ['error.not_ready', { s }];
    if (error.code === 'model_busy') return ['error.busy', { s }];
    if (error.code === 'model_timeout' || error.status === 504) return ['error.timeout'];
    if (error.code === 'profiles_unavailable') return ['error.profiles_off'];
    if (error.status === 429) return ['error.rate_limited', { s }];
    if (error.status === 403) return ['error.forbidden', { message: error.message }];
    if (error.status === 404) return ['error.not_found'];
    if (error.status === 422) return ['error.invalid', { message: error.message }];
    return ['error.generic', { message: error.message }];
  }
  if (error instanceof CutOff) return ['answer.cut_off'];
  if (error instanceof TypeError) return ['error.network'];
  return ['error.generic', { message: error?.message || String(error) }];
}

function showError(node, error) {
  const [key, vars] = describeError(error);
  setI18n(node, key, vars);
  node.classList.add('error');
}

function clearStatus(node) {
  node.classList.remove('error');
  delete node.dataset.i18n;
  delete node.dataset.i18nVars;
  node.textContent = '';
}

// ---------------------------------------------------------------------------------------
// 3. Server-sent events over a POST response
// ---------------------------------------------------------------------------------------

/** POST `body` and hand each server-sent event (name, parsed data) to `onEvent`. */
async function postStream(path, body, { signal, onEvent }) {
  const response = await authorizedFetch(path, {
    method: 'POST',
    signal,
    headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await apiError(response);
  if (!(response.headers.get('content-type') || '').includes('text/event-stream')) {
    onEvent('final', await response.json()); // a server that answered in one JSON body
    return;
  }
  await readEvents(response.body, onEvent);
}

async function readEvents(stream, onEvent) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let finished = false;
  try {
    while (!finished) {
      const { value, done } = await reader.read();
      finished = done;
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      buffer = buffer.replace(/\r\n/g, '\n');
      let end = buffer.indexOf('\n\n');
      while (end !== -1) {
        dispatchEvent(buffer.slice(0, end), onEvent);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
      }
    }
    if (buffer.trim()) dispatchEvent(buffer, onEvent);
  } finally {
    if (!finished) reader.cancel().catch(() => {});
  }
}

/** One event block: "event: name" and "data: …" lines (several data lines join with \n). */
function dispatchEvent(block, onEvent) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return;
  let payload = data.join('\n');
  try {
    payload = JSON.parse(payload);
  } catch {
    /* plain text data */
  }
  onEvent(name, payload);
}

// ---------------------------------------------------------------------------------------
// 4. Answers
// ---------------------------------------------------------------------------------------

/**
 * Stream an answer into `box`: queued places, then tokens as they come, then `renderFinal`
 * with the final AnswerResponse. `stateNode` carries data-state: streaming → done | error.
 * Resolves with {final, error}.
 */
async function streamAnswer(box, path, body, { signal, renderFinal, stateNode = box }) {
  stateNode.dataset.state = 'streaming';
  box.setAttribute('aria-busy', 'true');
  const status = h('p', { className: 'answer-status', i18n: 'answer.thinking' });
  const text = h('p', { className: 'answer-text streaming' });
  box.replaceChildren(status, text);
  let final = null;
  try {
    await postStream(path, body, {
      signal,
      onEvent(name, data) {
        if (name === 'queued') setI18n(status, 'answer.queued', { place: data?.place ?? '?' });
        else if (name === 'token') {
          status.hidden = true;
          text.append(String(data?.text ?? '')); // claims carry their own separating spaces
        } else if (name === 'final') final = data;
        else if (name === 'error') {
          const e = data?.error || {};
          throw new ApiError(e.status || 500, e.code || 'stream_error', e.message || '', e.retry_after_s ?? null);
        }
      },
    });
    if (!final) throw new CutOff();
    box.replaceChildren();
    renderFinal(box, final);
    stateNode.dataset.state = 'done';
    return { final, error: null };
  } catch (error) {
    if (isAbort(error)) return { final: null, error };
    const message = h('p', { className: 'answer-error', role: 'alert' });
    showError(message, error);
    status.hidden = true;
    box.append(message);
    stateNode.dataset.state = 'error';
    return { final: null, error };
  } finally {
    box.removeAttribute('aria-busy');
  }
}

/** The sources of an answer by the number that "[n]" in its text refers to. */
function sourcesByNumber(answer) {
  const map = new Map();
  for (const source of [...(answer.sources || []), ...(answer.citations || [])]) map.set(source.number, source);
  return map;
}

/** The answer's text with each "[n]" made a link by `makeLink(source, n)`; returns the
 * paragraph and how many citation links it holds. */
function citedText(text, sources, makeLink) {
  const paragraph = h('p', { className: 'answer-text' });
  const pattern = /\[(\d+)\]/g;
  let last = 0;
  let links = 0;
  for (const match of text.matchAll(pattern)) {
    paragraph.append(text.slice(last, match.index));
    const source = sources.get(Number(match[1]));
    if (source) {
      paragraph.append(makeLink(source, match[1]));
      links += 1;
    } else paragraph.append(match[0]);
    last = match.index + match[0].length;
  }
  paragraph.append(text.slice(last));
  return { paragraph, links };
}

/** The supporting quote of the first claim citing source `number`. */
function quoteFor(answer, number) {
  return (answer.claims || []).find((c) => c.quote && (c.sources || []).includes(number))?.quote || null;
}

function abstention(answer, extra = []) {
  return h('div', { className: 'abstained', 'data-testid': 'abstained' },
    h('p', { className: 'abstained-title', i18n: 'answer.abstained' }),
    h('p', { className: 'answer-text', text: answer.answer }),
    answer.abstain_reason ? h('p', { className: 'muted', i18n: `reason.${answer.abstain_reason}` }) : null,
    extra);
}

function droppedNote(answer) {
  return answer.dropped_claims ? h('p', { className: 'muted small', i18n: ['answer.dropped', { n: answer.dropped_claims }] }) : null;
}

/** A chip for a constraint label (not removable). */
function constraintChip(label) {
  const [key, vars] = chipText(label);
  return h('span', { className: 'chip static', 'data-label': label }, key ? tx(key, vars) : label);
}

/** How a constraint label of generation/constraints.py (or an advice follow-up) reads:
 * [i18n key, vars], or [null] for a label this page does not know (shown as it is). */
function chipText(label) {
  const num = '(\\d+(?:\\.\\d+)?)';
  const patterns = [
    [new RegExp(`^price ${num}–${num}$`), (m) => ['chip.price_range', { a: m[1], b: m[2] }]],
    [new RegExp(`^price ≤ ${num}$`), (m) => ['chip.price_max', { v: m[1] }]],
    [new RegExp(`^price ≥ ${num}$`), (m) => ['chip.price_min', { v: m[1] }]],
    [new RegExp(`^price < ${num}$`), (m) => ['chip.price_below', { v: m[1] }]],
    [new RegExp(`^price > ${num}$`), (m) => ['chip.price_above', { v: m[1] }]],
    [new RegExp(`^rating ≥ ${num}$`), (m) => ['chip.rating', { v: m[1] }]],
    [/^in stock$/, () => ['chip.in_stock']],
    [/^brand = (.+)$/, (m) => ['chip.brand', { v: m[1] }]],
    [/^brand ≠ (.+)$/, (m) => ['chip.not_brand', { v: m[1] }]],
    [/^the products shown last$/, () => ['chip.shown_last']],
  ];
  for (const [pattern, read] of patterns) {
    const match = label.match(pattern);
    if (match) return read(match);
  }
  return [null];
}

// ---------------------------------------------------------------------------------------
// 5a. Search view (#/)
// ---------------------------------------------------------------------------------------

/**
 * Chips: `applied_constraints` of the search response are labels ("price ≤ 100",
 * "brand ≠ Samsung", "in stock", "rating ≥ 4", "brand = Sony", "price 50–80"). Removing one
 * searches `searched_for` (the query with the constraint phrases taken out) with
 * `parse_constraints: false`, and passes the remaining labels back as explicit `filters`
 * (merged with the form's filters, which win, as on the server). The query box then shows
 * `searched_for`; submitting it unchanged keeps the remaining chips, editing it starts over.
 */
const search = {
  view: null,
  text: '',
  mode: 'parse', // 'parse': the server reads constraints from the text; 'chips': ours
  chips: [],
  searchedFor: '',
  page: 1,
  controller: null,
};

/** The filters the constraint labels stand for, combined as generation/constraints.py does. */
function filtersFromLabels(labels) {
  const lows = [];
  const highs = [];
  const ratings = [];
  const brands = [];
  const excluded = [];
  let inStock = null;
  const num = '(\\d+(?:\\.\\d+)?)';
  for (const label of labels) {
    let m;
    if ((m = label.match(new RegExp(`^price ${num}–${num}$`)))) {
      lows.push(Number(m[1]));
      highs.push(Number(m[2]));
    } else if ((m = label.match(new RegExp(`^price ≤ ${num}$`)))) highs.push(Number(m[1]));
    else if ((m = label.match(new RegExp(`^price ≥ ${num}$`)))) lows.push(Number(m[1]));
    else if ((m = label.match(new RegExp(`^rating ≥ ${num}$`)))) ratings.push(Number(m[1]));
    else if (label === 'in stock') inStock = true;
    else if ((m = label.match(/^brand = (.+)$/))) brands.push(m[1]);
    else if ((m = label.match(/^brand ≠ (.+)$/))) excluded.push(m[1]);
  }
  const filters = {};
  if (lows.length) filters.price_min = Math.max(...lows);
  if (highs.length) filters.price_max = Math.min(...highs);
  if (ratings.length) filters.min_rating = Math.max(...ratings);
  if (inStock) filters.in_stock = true;
  const kept = brands.filter((b) => !excluded.includes(b));
  if (kept.length) filters.brands = kept;
  if (excluded.length) filters.exclude_brands = excluded;
  return filters;
}

function numberField(id) {
  const raw = document.getElementById(id)?.value.trim();
  if (!raw) return null;
  const value = Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : null;
}

/** The filters of the form, in FiltersIn's fields. */
function formFilters() {
  const filters = {};
  const priceMin = numberField('price-min');
  const priceMax = numberField('price-max');
  const rating = numberField('rating-min');
  if (priceMin !== null) filters.price_min = priceMin;
  if (priceMax !== null) filters.price_max = priceMax;
  if (rating !== null) filters.min_rating = Math.min(rating, 5);
  const brands = (document.getElementById('brand')?.value || '')
    .split(/[,，、]/).map((b) => b.trim()).filter(Boolean).slice(0, 50);
  if (brands.length) filters.brands = brands;
  if (document.getElementById('in-stock')?.checked) filters.in_stock = true;
  return filters;
}

function field(id, labelKey, input, hintKey) {
  return h('div', { className: 'field' },
    h('label', { for: id, i18n: labelKey }),
    input,
    hintKey ? h('p', { className: 'hint', id: `${id}-hint`, i18n: hintKey }) : null);
}

function buildSearchView() {
  const view = h('section', { className: 'view search-view', 'data-testid': 'search-view', 'aria-labelledby': 'search-title' },
    h('h1', { id: 'search-title', tabindex: '-1', i18n: 'search.title' }),
    h('form', { id: 'search-form', role: 'search', className: 'search-form', onsubmit: onSearchSubmit },
      h('div', { className: 'field query-field' },
        h('label', { for: 'q', i18n: 'search.label' }),
        h('div', { className: 'query-row' },
          h('input', { id: 'q', name: 'q', type: 'search', autocomplete: 'off', maxlength: '500', enterkeyhint: 'search', i18nAttr: { placeholder: 'search.placeholder' } }),
          h('button', { type: 'submit', className: 'primary', i18n: 'search.submit' }))),
      h('fieldset', { className: 'filters' },
        h('legend', { i18n: 'filters.title' }),
        h('div', { className: 'filter-grid' },
          field('price-min', 'filters.price_min', h('input', { id: 'price-min', type: 'number', min: '0', step: 'any', inputmode: 'decimal' })),
          field('price-max', 'filters.price_max', h('input', { id: 'price-max', type: 'number', min: '0', step: 'any', inputmode: 'decimal' })),
          field('brand', 'filters.brand', h('input', { id: 'brand', type: 'text', autocomplete: 'off', 'aria-describedby': 'brand-hint' }), 'filters.brand_hint'),
          field('rating-min', 'filters.rating_min', h('input', { id: 'rating-min', type: 'number', min: '0', max: '5', step: '0.1', inputmode: 'decimal' })),
          h('div', { className: 'field check' },
            h('input', { id: 'in-stock', type: 'checkbox' }),
            h('label', { for: 'in-stock', i18n: 'filters.in_stock' }))))),
    h('div', { className: 'chips-row', id: 'chips-row', hidden: true },
      h('span', { className: 'chips-title', id: 'chips-title', i18n: 'search.understood' }),
      h('div', { className: 'chips', id: 'chips', role: 'group', 'aria-labelledby': 'chips-title' })),
    h('p', { id: 'search-status', className: 'status', role: 'status', 'aria-live': 'polite' }),
    h('ol', { id: 'results', className: 'results', i18nAttr: { 'aria-label': 'search.results_label' } }),
    h('nav', { className: 'pager', id: 'pager', hidden: true, i18nAttr: { 'aria-label': 'search.results_label' } },
      h('button', { type: 'button', id: 'page-prev', className: 'secondary', i18n: 'search.prev', onclick: () => runSearch(search.page - 1) }),
      h('span', { id: 'page-label', className: 'muted' }),
      h('button', { type: 'button', id: 'page-next', className: 'secondary', i18n: 'search.next', onclick: () => runSearch(search.page + 1) })));
  return view;
}

function onSearchSubmit(event) {
  event.preventDefault();
  const text = document.getElementById('q').value.trim();
  const status = document.getElementById('search-status');
  if (!text) {
    setI18n(status, 'search.empty_query');
    return;
  }
  followTypedLanguage(text);
  if (!(search.mode === 'chips' && text === search.text)) {
    Object.assign(search, { text, mode: 'parse', chips: [], searchedFor: '' });
  }
  runSearch(1);
}

function searchBody(page) {
  const body = { query: search.text, page, size: PAGE_SIZE };
  const user = currentUser();
  if (user) body.user_id = user;
  const form = formFilters();
  const filters = search.mode === 'chips' ? { ...filtersFromLabels(search.chips), ...form } : form;
  if (search.mode === 'chips') body.parse_constraints = false;
  if (Object.keys(filters).length) body.filters = filters;
  return body;
}

async function runSearch(page) {
  const status = document.getElementById('search-status');
  if (!search.text || page < 1) return;
  const body = searchBody(Math.min(page, 100));
  const { price_min: low, price_max: high } = body.filters || {};
  if (low !== undefined && high !== undefined && low > high) {
    setI18n(status, 'filters.bad_range');
    status.classList.add('error');
    return;
  }
  search.controller?.abort();
  const controller = new AbortController();
  search.controller = controller;
  status.classList.remove('error');
  setI18n(status, 'search.searching');
  try {
    const response = await api('/search', { method: 'POST', body, signal: controller.signal });
    if (controller !== search.controller) return;
    search.page = response.page;
    if (search.mode === 'parse') {
      search.chips = [...response.applied_constraints];
      search.searchedFor = response.searched_for;
    }
    renderChips();
    renderResults(response);
    if (search.view.isConnected) history.replaceState(null, '', `#/?q=${enc(search.text)}`);
  } catch (error) {
    if (isAbort(error)) return;
    showError(status, error);
  }
}

function renderChips() {
  const row = document.getElementById('chips-row');
  const chips = document.getElementById('chips');
  chips.replaceChildren(...search.chips.map((label) => {
    const [key, vars] = chipText(label);
    const text = key ? t(key, vars) : label;
    return h('span', { className: 'chip', 'data-testid': 'chip', 'data-label': label },
      key ? tx(key, vars) : h('span', { text: label }),
      h('button', {
        type: 'button',
        className: 'chip-remove',
        'data-testid': 'chip-remove',
        i18nAttr: { 'aria-label': ['search.chip_remove', { label: text }], title: ['search.chip_remove', { label: text }] },
        onclick: () => removeChip(label),
      }, h('span', { 'aria-hidden': 'true', text: '×' })));
  }));
  row.hidden = search.chips.length === 0;
}

async function removeChip(label) {
  const index = search.chips.indexOf(label);
  search.chips = search.chips.filter((chip) => chip !== label);
  if (search.mode === 'parse') {
    search.text = search.searchedFor || search.text;
    search.mode = 'chips';
  }
  document.getElementById('q').value = search.text;
  await runSearch(1);
  // keep the keyboard where it was: the next chip's button, else the query box
  const buttons = document.querySelectorAll('#chips [data-testid=chip-remove]');
  (buttons[Math.min(index, buttons.length - 1)] || document.getElementById('q')).focus();
}

function renderResults(response) {
  const status = document.getElementById('search-status');
  const list = document.getElementById('results');
  const shown = response.searched_for || response.query;
  if (!response.results.length) setI18n(status, 'search.none', { query: shown });
  else setI18n(status, 'search.count', { n: response.results.length, query: shown, page: response.page });
  if (response.personalized && response.results.length) status.append(' ', tx('search.personalized'));
  list.start = (response.page - 1) * response.size + 1;
  list.replaceChildren(...response.results.map((item, i) => resultItem(item, `${response.page}-${i}`)));
  const pager = document.getElementById('pager');
  pager.hidden = response.page === 1 && response.results.length < response.size;
  document.getElementById('page-prev').disabled = response.page <= 1;
  document.getElementById('page-next').disabled = response.results.length < response.size || response.page >= 100;
  setI18n(document.getElementById('page-label'), 'search.page', { page: response.page });
}

function resultItem(item, key) {
  const whyId = `why-${key}`;
  const why = h('div', { className: 'why', id: whyId, 'data-testid': 'why', hidden: true }, whyDetails(item));
  const toggle = h('button', {
    type: 'button', className: 'link-button why-toggle', 'data-testid': 'why-toggle',
    'aria-expanded': 'false', 'aria-controls': whyId, i18n: 'search.why',
  });
  toggle.addEventListener('click', () => {
    const open = why.hidden;
    why.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    setI18n(toggle, open ? 'search.hide_why' : 'search.why');
  });
  return h('li', { className: 'result card', 'data-testid': 'result', 'data-product-id': item.id },
    h('h2', { className: 'result-title' },
      h('a', { href: productHref(item.id), 'data-testid': 'result-link', text: item.title })),
    h('p', { className: 'result-meta muted' },
      item.brand ? h('span', { className: 'brand-label', text: item.brand }) : null,
      item.brand && item.category ? ' · ' : null,
      item.category ? h('span', { text: item.category }) : null),
    h('p', { className: 'result-facts' },
      item.price !== null ? h('strong', { className: 'price', text: formatMoney(item.price, item.currency) }) : null,
      ratingNode(item.rating),
      stockNode(item.in_stock)),
    toggle,
    why);
}

const FIELDS = ['title', 'brand', 'category', 'attributes', 'description', 'body'];

/** Why a result matched: matched terms, each retriever's rank, scores, personal reasons. */
function whyDetails(item) {
  const why = item.why || {};
  const list = h('dl', { className: 'why-list' });
  const found = Object.entries(why.retrievers || {}).map(([name, evidence]) => h('li', {},
    ['lexical', 'semantic'].includes(name) ? tx(`why.retriever.${name}`) : name, ' ',
    tx('why.rank', { rank: evidence.rank }),
    evidence.score !== undefined ? h('span', { className: 'muted' }, ' (', tx('why.score', { score: formatNumber(evidence.score) }), ')') : null));
  list.append(h('dt', { i18n: 'why.found_by' }), h('dd', {}, h('ul', { className: 'plain' }, found)));
  const terms = Object.entries(why.matched_terms || {});
  list.append(h('dt', { i18n: 'why.matched' }), h('dd', {}, terms.length
    ? h('ul', { className: 'plain' }, terms.map(([name, words]) => h('li', {},
      h('span', { className: 'muted' }, FIELDS.includes(name) ? tx(`field.${name}`) : name, ': '),
      words.map((word, i) => [i ? ', ' : '', h('mark', { className: 'term', text: word })]))))
    : tx('why.no_terms')));
  list.append(h('dt', { i18n: 'why.scores' }), h('dd', {},
    tx('why.fused', { score: formatNumber(why.fused_score ?? 0) }),
    why.rerank_score !== null && why.rerank_score !== undefined ? [' · ', tx('why.rerank', { score: formatNumber(why.rerank_score) })] : null));
  const personal = item.personal;
  if (personal) {
    const moved = personal.moved > 0 ? tx('why.moved_up', { n: personal.moved })
      : personal.moved < 0 ? tx('why.moved_down', { n: -personal.moved }) : tx('why.not_moved');
    list.append(h('dt', { i18n: 'why.personal' }), h('dd', {},
      h('p', {}, tx('why.relevance_rank', { rank: personal.relevance_rank }), ' ', moved),
      personal.reasons?.length ? h('ul', { className: 'reasons' }, personal.reasons.map((r) => h('li', { text: r }))) : null,
      personal.personal_score !== null && personal.personal_score !== undefined
        ? h('p', { className: 'muted' }, tx('why.personal_score', { score: formatNumber(personal.personal_score) })) : null));
  }
  return list;
}

function showSearch(params) {
  if (!search.view) search.view = buildSearchView();
  mount(search.view);
  const q = params.get('q');
  if (q && q !== search.text && q !== document.getElementById('q').value) {
    document.getElementById('q').value = q;
    Object.assign(search, { text: q, mode: 'parse', chips: [], searchedFor: '' });
    runSearch(1);
  }
}

// ---------------------------------------------------------------------------------------
// 5b. Product view (#/product/<id>)
// ---------------------------------------------------------------------------------------

const product = { id: null, view: null, controller: null, askController: null };

async function showProduct(id, params) {
  product.controller?.abort();
  product.askController?.abort();
  const controller = new AbortController();
  const view = h('section', { className: 'view product-view', 'data-testid': 'product', 'data-product-id': id, 'aria-busy': 'true' },
    h('p', { className: 'back' }, h('a', { href: search.text ? `#/?q=${enc(search.text)}` : '#/', i18n: 'product.back' })),
    h('p', { className: 'status', role: 'status', 'aria-live': 'polite', i18n: 'product.loading' }));
  Object.assign(product, { id, view, controller });
  mount(view);
  let item;
  try {
    ({ product: item } = await api(`/products/${enc(id)}`, { signal: controller.signal }));
  } catch (error) {
    if (isAbort(error) || product.view !== view) return;
    view.removeAttribute('aria-busy');
    showError(view.querySelector('.status'), error);
    return;
  }
  if (product.view !== view) return;
  renderProduct(view, item);
  view.removeAttribute('aria-busy');
  rememberProductInNav(item);
  sendViewEvent(item.id);
  loadReviewSummary(view, item, controller.signal);
  loadSimilar(view, item, controller.signal);
  const passage = params.get('passage');
  if (passage) highlightPassage(passage);
  else view.querySelector('h1')?.focus({ preventScroll: true });
}

function renderProduct(view, item) {
  const id = item.id;
  const sections = [
    h('header', { className: 'product-header card' },
      h('h1', { id: 'product-title', tabindex: '-1', text: item.title }),
      h('p', { className: 'muted' },
        item.brand ? h('span', { className: 'brand-label', text: item.brand }) : null,
        item.brand && item.category ? ' · ' : null,
        item.category ? h('span', { text: item.category }) : null),
      h('p', { className: 'result-facts' },
        item.price !== null ? h('strong', { className: 'price big', text: formatMoney(item.price, item.currency) }) : null,
        ratingNode(item.rating, item.review_count),
        stockNode(item.in_stock))),
    askSection(id),
  ];
  if (item.description) {
    sections.push(h('section', { className: 'card', 'aria-labelledby': 'description-title' },
      h('h2', { id: 'description-title', i18n: 'product.description' }),
      h('div', { className: 'passage', 'data-testid': 'description', 'data-passage-id': `${id}#description`, id: anchorId(`${id}#description`), tabindex: '-1' },
        h('p', { className: 'passage-text', text: item.description }))));
  }
  const attributes = Object.entries(item.attributes || {});
  if (attributes.length) {
    sections.push(h('section', { className: 'card', 'aria-labelledby': 'attributes-title' },
      h('h2', { id: 'attributes-title', i18n: 'product.attributes' }),
      h('div', { className: 'table-wrap' },
        h('table', { className: 'passage attributes', 'data-testid': 'attributes', 'data-passage-id': `${id}#attributes`, id: anchorId(`${id}#attributes`), tabindex: '-1' },
          h('thead', { className: 'sr-only' }, h('tr', {}, h('th', { scope: 'col', i18n: 'product.attribute' }), h('th', { scope: 'col', i18n: 'product.value' }))),
          h('tbody', {}, attributes.map(([name, value]) => h('tr', {},
            h('th', { scope: 'row', text: name.replace(/_/g, ' ') }),
            h('td', { className: 'passage-text' }, attributeValue(value)))))))));
  }
  sections.push(
    h('section', { className: 'card aspects-section', 'aria-labelledby': 'aspects-title' },
      h('h2', { id: 'aspects-title', i18n: 'product.aspects' }),
      h('div', { className: 'aspects', 'aria-live': 'polite' }, h('p', { className: 'muted', i18n: 'product.aspects_loading' }))),
    reviewsSection(item),
    qaSection(item),
    h('section', { className: 'card similar-section', 'aria-labelledby': 'similar-title' },
      h('h2', { id: 'similar-title', i18n: 'product.similar' }),
      h('div', { className: 'similar' }, h('p', { className: 'muted', i18n: 'product.similar_loading' }))));
  view.querySelector('.status').remove();
  view.append(...sections);
}

function reviewsSection(item) {
  const reviews = item.reviews || [];
  return h('section', { className: 'card', 'aria-labelledby': 'reviews-title' },
    h('h2', { id: 'reviews-title', i18n: 'product.reviews' }),
    reviews.length
      ? h('ol', { className: 'reviews plain' }, reviews.map((review, i) => {
        const passageId = `${item.id}#review-${i + 1}`;
        return h('li', {
          className: 'passage review', 'data-testid': 'review', 'data-passage-id': passageId,
          id: anchorId(passageId), tabindex: '-1', i18nAttr: { 'aria-label': ['product.review_label', { n: i + 1 }] },
        },
        review.rating !== null && review.rating !== undefined ? h('p', { className: 'review-rating' }, ratingNode(review.rating)) : null,
        h('p', { className: 'passage-text', text: review.text }));
      }))
      : h('p', { className: 'muted', i18n: 'product.no_reviews' }));
}

function qaSection(item) {
  const pairs = item.qa || [];
  return h('section', { className: 'card', 'aria-labelledby': 'qa-title' },
    h('h2', { id: 'qa-title', i18n: 'product.qa' }),
    pairs.length
      ? h('ol', { className: 'qa plain' }, pairs.map((pair, i) => {
        const passageId = `${item.id}#qa-${i + 1}`;
        return h('li', { className: 'passage qa-pair', 'data-testid': 'qa', 'data-passage-id': passageId, id: anchorId(passageId), tabindex: '-1' },
          h('p', { className: 'qa-q' }, h('strong', { i18n: 'product.q' }), ' ', h('span', { className: 'passage-text', text: pair.question })),
          h('p', { className: 'qa-a' }, h('strong', { i18n: 'product.a' }), ' ', h('span', { className: 'passage-text', text: pair.answer })));
      }))
      : h('p', { className: 'muted', i18n: 'product.no_qa' }));
}

function askSection(productId) {
  const answer = h('div', { className: 'answer', 'data-testid': 'answer', 'data-state': 'idle', 'aria-live': 'polite' });
  const asked = h('p', { className: 'asked muted', hidden: true });
  const input = h('textarea', { id: 'ask-input', name: 'question', rows: '2', maxlength: '500', required: true, i18nAttr: { placeholder: 'ask.placeholder' } });
  const button = h('button', { type: 'submit', className: 'primary', i18n: 'ask.submit' });
  const form = h('form', { id: 'ask-form', className: 'ask-form' },
    h('label', { for: 'ask-input', i18n: 'ask.label' }),
    h('div', { className: 'ask-row' }, input, button));
  submitOnEnter(input, form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) return;
    followTypedLanguage(question);
    product.askController?.abort();
    const controller = new AbortController();
    product.askController = controller;
    setI18n(asked, 'ask.you_asked', { q: question });
    asked.hidden = false;
    await streamAnswer(answer, `/products/${enc(productId)}/ask`, { question, stream: true }, {
      signal: controller.signal,
      renderFinal: (box, final) => renderAskFinal(box, final, productId),
    });
  });
  return h('section', { className: 'card ask-section', 'aria-labelledby': 'ask-title' },
    h('h2', { id: 'ask-title', i18n: 'ask.title' }), form, asked, answer);
}

function renderAskFinal(box, answer, productId) {
  if (answer.abstained) {
    const closest = (answer.closest || [])[0];
    box.append(abstention(answer, closest
      ? h('p', {}, h('a', {
        href: passageHref(productId, closest.id), 'data-testid': 'closest-passage', 'data-passage-id': closest.id,
        i18n: 'answer.closest_passage', onclick: (e) => { e.preventDefault(); highlightPassage(closest.id); },
      }))
      : null));
    return;
  }
  const sources = sourcesByNumber(answer);
  const link = (source, n, label = `[${n}]`) => h('a', {
    href: passageHref(productId, source.id), className: 'citation', 'data-testid': 'citation',
    'data-passage-id': source.id, title: source.kind ? t(`kind.${source.kind}`) : null,
    i18nAttr: { 'aria-label': ['answer.cite_label', { n }] },
    onclick: (e) => { e.preventDefault(); highlightPassage(source.id, { quote: quoteFor(answer, source.number) }); },
  }, label);
  // a yes/no verdict opens the answer's own text ("Yes. …"): no separate badge
  const { paragraph, links } = citedText(answer.answer, sources, (source, n) => link(source, Number(n)));
  box.append(paragraph);
  const cited = answer.citations || [];
  if (cited.length) {
    box.append(h('div', { className: 'sources' },
      h('h3', { i18n: 'answer.sources' }),
      h('ol', { className: 'plain source-list' }, cited.map((source) => {
        const label = [`[${source.number}] `, tx(`kind.${source.kind}`)];
        const anchor = links ? h('a', {
          href: passageHref(productId, source.id), 'data-testid': 'source-link', 'data-passage-id': source.id,
          onclick: (e) => { e.preventDefault(); highlightPassage(source.id, { quote: quoteFor(answer, source.number) }); },
        }, label) : link(source, source.number, label);
        const quote = quoteFor(answer, source.number);
        return h('li', {}, anchor, quote ? h('q', { className: 'muted', text: quote }) : null);
      }))));
  }
  const dropped = droppedNote(answer);
  if (dropped) box.append(dropped); // append(null) would write "null"
}

/** Scroll to the passage `passageId` of the product shown, add class "highlight", and mark
 * a span (code point offsets) or a quote in its text. */
function highlightPassage(passageId, { quote = null, span = null } = {}) {
  const root = document.querySelector('section[data-testid=product]');
  if (!root) return false;
  for (const old of root.querySelectorAll('.highlight')) old.classList.remove('highlight');
  for (const text of root.querySelectorAll('.passage-text')) {
    if (text.querySelector('mark')) text.textContent = text.textContent; // drop earlier marks
  }
  // links (citations, quotes) carry data-passage-id too: only the passage itself
  const target = root.querySelector(`.passage[data-passage-id="${CSS.escape(passageId)}"]`);
  if (!target) return false;
  target.classList.add('highlight');
  const texts = [...target.querySelectorAll('.passage-text')];
  if (span && texts[0]) texts[0].replaceChildren(...markedText(texts[0].textContent, span.start, span.end));
  else if (quote) {
    for (const text of texts) {
      const at = text.textContent.indexOf(quote);
      if (at === -1) continue;
      const whole = text.textContent;
      text.replaceChildren(whole.slice(0, at), h('mark', { text: quote }), whole.slice(at + quote.length));
      break;
    }
  }
  target.scrollIntoView({ behavior: reducedMotion() ? 'auto' : 'smooth', block: 'center' });
  target.focus({ preventScroll: true });
  return true;
}

async function loadReviewSummary(view, item, signal) {
  const box = view.querySelector('.aspects');
  try {
    const summary = await api(`/products/${enc(item.id)}/review-summary`, { signal });
    if (!box.isConnected && product.view !== view) return;
    renderAspects(box, summary, item.id);
  } catch (error) {
    if (!isAbort(error)) showError(box.firstElementChild || box.appendChild(h('p')), error);
  }
}

function renderAspects(box, summary, productId) {
  if (!summary.aspects.length) {
    box.replaceChildren(h('p', { className: 'muted', i18n: 'product.no_aspects' }));
    return;
  }
  box.replaceChildren(
    h('p', { className: 'muted small', i18n: ['product.aspects_basis', { with: summary.reviews_with_aspects, all: summary.reviews }] }),
    h('ul', { className: 'aspect-list plain' }, summary.aspects.map((aspect) => aspectItem(aspect, productId))));
}

function aspectItem(aspect, productId) {
  const total = aspect.positive + aspect.negative + aspect.neutral || 1;
  const pct = (n) => `${Math.round((n / total) * 100)}%`;
  return h('li', { className: 'aspect', 'data-testid': 'aspect', 'data-aspect': aspect.aspect },
    h('h3', { className: 'aspect-label', text: aspect.label }),
    h('p', { className: 'aspect-counts' },
      h('span', { className: 'count positive', i18n: ['aspect.positive', { n: aspect.positive }] }), ' · ',
      h('span', { className: 'count negative', i18n: ['aspect.negative', { n: aspect.negative }] }),
      aspect.neutral ? [' · ', h('span', { className: 'count neutral', i18n: ['aspect.neutral', { n: aspect.neutral }] })] : null,
      h('span', { className: 'muted' }, ' — ', tx('aspect.mentions', { n: aspect.reviews }))),
    h('div', { className: 'bar', 'aria-hidden': 'true' },
      h('span', { className: 'bar-positive', style: { width: pct(aspect.positive) } }),
      h('span', { className: 'bar-neutral', style: { width: pct(aspect.neutral) } }),
      h('span', { className: 'bar-negative', style: { width: pct(aspect.negative) } })),
    aspect.quotes.length ? h('ul', { className: 'quotes plain' }, aspect.quotes.map((quote) => quoteItem(quote, productId))) : null);
}

/** A quote of a review: links to (and highlights its clause in) the review passage. */
function quoteItem(quote, productId) {
  const [termStart, termEnd] = quote.term || [];
  const body = markedText(quote.text, termStart - quote.start, termEnd - quote.start, 'strong');
  const polarity = ['positive', 'negative', 'neutral'].includes(quote.polarity) ? quote.polarity : 'neutral';
  return h('li', { className: `quote quote-${polarity}` },
    h('span', { className: 'polarity', 'aria-hidden': 'true', text: polarity === 'positive' ? '+' : polarity === 'negative' ? '−' : '·' }),
    h('a', {
      href: passageHref(productId, quote.passage_id), 'data-testid': 'quote', 'data-passage-id': quote.passage_id,
      onclick: (e) => { e.preventDefault(); highlightPassage(quote.passage_id, { span: { start: quote.start, end: quote.end } }); },
    }, h('span', { className: 'sr-only', i18n: `polarity.${polarity}` }), h('span', { className: 'sr-only' }, ': '), '“', body, '”'));
}

async function loadSimilar(view, item, signal) {
  const box = view.querySelector('.similar');
  try {
    const page = await api(`/products/${enc(item.id)}/similar?size=${SIMILAR_SIZE}`, { signal });
    if (!page.results.length) {
      box.replaceChildren(h('p', { className: 'muted', i18n: 'product.no_similar' }));
      return;
    }
    box.replaceChildren(h('ul', { className: 'similar-list plain' }, page.results.map((similar) => h('li', { className: 'similar-item' },
      h('a', { href: productHref(similar.id), 'data-testid': 'similar-item', 'data-product-id': similar.id, text: similar.title }),
      h('p', { className: 'result-facts small' },
        similar.price !== null ? h('span', { className: 'price', text: formatMoney(similar.price, similar.currency) }) : null,
        ratingNode(similar.rating), stockNode(similar.in_stock)),
      similar.differences?.length ? h('p', { className: 'muted small', text: similar.differences.join(' · ') }) : null))));
  } catch (error) {
    if (!isAbort(error)) showError(box.firstElementChild || box.appendChild(h('p')), error);
  }
}

/** A "view" event for the shopper (not when they opted out: the server would drop it). */
function sendViewEvent(productId) {
  const user = currentUser();
  if (!user || privacy.optedOut) return;
  const event = { event_id: `view-${Date.now()}-${randomHex(8)}`, user_id: user, type: 'view', product_id: productId };
  api('/events', { method: 'POST', body: { events: [event] } }).catch(() => {});
}

function rememberProductInNav(item) {
  const link = document.querySelector('[data-testid=nav-product]');
  link.href = productHref(item.id);
  link.hidden = false;
  link.title = item.title;
}

// ---------------------------------------------------------------------------------------
// 5c. Advice view (#/advice)
// ---------------------------------------------------------------------------------------

/** The conversation id is ours to pick (AdviceRequest.conversation_id: 1–64 of [A-Za-z0-9_-]);
 * the server keeps the last results under it for "cheaper ones?" or "compare the first two". */
const advice = { view: null, conversationId: null, turns: 0, conversations: true, controller: null, busy: false };

function buildAdviceView() {
  const input = h('textarea', { id: 'chat-input', name: 'message', rows: '2', maxlength: '500', required: true, i18nAttr: { placeholder: 'advice.placeholder' } });
  const form = h('form', { id: 'chat-form', className: 'chat-form', onsubmit: onChatSubmit },
    h('label', { for: 'chat-input', i18n: 'advice.label' }),
    h('div', { className: 'ask-row' }, input, h('button', { type: 'submit', id: 'chat-send', className: 'primary', i18n: 'advice.send' })),
    h('div', { className: 'actions' },
      h('button', { type: 'button', className: 'secondary', id: 'chat-new', i18n: 'advice.new', onclick: newConversation })));
  submitOnEnter(input, form);
  return h('section', { className: 'view advice-view', 'data-testid': 'advice', 'aria-labelledby': 'advice-title' },
    h('h1', { id: 'advice-title', tabindex: '-1', i18n: 'advice.title' }),
    h('p', { className: 'muted', i18n: 'advice.hint' }),
    h('ol', { id: 'chat-log', className: 'chat plain', i18nAttr: { 'aria-label': 'advice.log' } }),
    h('p', { id: 'chat-status', className: 'status', role: 'status', 'aria-live': 'polite' }),
    form);
}

function newConversation() {
  advice.controller?.abort();
  advice.conversationId = null;
  advice.turns = 0;
  document.getElementById('chat-log').replaceChildren();
  setI18n(document.getElementById('chat-status'), 'advice.started');
  document.getElementById('chat-input').focus();
}

function onChatSubmit(event) {
  event.preventDefault();
  const input = document.getElementById('chat-input');
  const question = input.value.trim();
  if (!question || advice.busy) return;
  input.value = '';
  sendAdvice(question);
}

function chatMessage(role, ...children) {
  return h('li', { className: `message message-${role}`, 'data-testid': 'chat-message', 'data-role': role },
    h('p', { className: 'message-author', i18n: role === 'user' ? 'advice.you' : 'advice.assistant' }), ...children);
}

async function sendAdvice(question) {
  followTypedLanguage(question);
  const log = document.getElementById('chat-log');
  const status = document.getElementById('chat-status');
  clearStatus(status);
  if (advice.conversations && !advice.conversationId) {
    advice.conversationId = `web-${randomHex(12)}`;
    advice.turns = 0;
  }
  log.append(chatMessage('user', h('p', { className: 'message-text', text: question })));
  const body = h('div', { className: 'answer', 'aria-live': 'polite' });
  const message = chatMessage('assistant', body);
  message.dataset.state = 'streaming';
  log.append(message);
  message.scrollIntoView({ behavior: reducedMotion() ? 'auto' : 'smooth', block: 'nearest' });
  advice.controller = new AbortController();
  setChatBusy(true);
  const options = { signal: advice.controller.signal, renderFinal: renderAdviceFinal, stateNode: message };
  try {
    const first = await streamAnswer(body, '/advice', adviceBody(question), options);
    let { final } = first;
    if (first.error?.code === 'internal_error' && advice.conversationId && advice.turns === 0) {
      // A server without a conversation store answers the first turn of any conversation
      // with a 500 ("conversations are not configured"): ask without one from now on.
      advice.conversations = false;
      advice.conversationId = null;
      setI18n(status, 'advice.no_conversations');
      ({ final } = await streamAnswer(body, '/advice', adviceBody(question), options));
    }
    if (final) advice.turns += 1;
  } finally {
    setChatBusy(false);
  }
}

function adviceBody(question) {
  const body = { question, stream: true };
  const user = currentUser();
  if (user) body.user_id = user;
  if (advice.conversationId) body.conversation_id = advice.conversationId;
  return body;
}

function setChatBusy(busy) {
  advice.busy = busy;
  const send = document.getElementById('chat-send');
  if (send) send.disabled = busy;
}

function renderAdviceFinal(box, answer) {
  const link = (source, label, testid) => h('a', {
    href: productHref(source.product_id), className: testid === 'citation' ? 'citation' : null,
    'data-testid': testid, 'data-passage-id': source.id, 'data-product-id': source.product_id, title: source.title,
  }, label);
  if (answer.abstained) {
    const closest = answer.closest || [];
    box.append(abstention(answer, closest.length ? [
      h('p', { className: 'small', i18n: 'advice.closest' }),
      h('ul', { className: 'plain product-links' }, closest.map((s) => h('li', {}, link(s, s.title, 'closest-product')))),
    ] : null));
    return;
  }
  if (answer.follow_up && answer.follow_up !== 'new') {
    box.append(h('p', { className: 'muted small', i18n: `followup.${answer.follow_up}` }));
  }
  const sources = sourcesByNumber(answer);
  const { paragraph, links } = citedText(answer.answer, sources, (source, n) => {
    const anchor = link(source, `[${n}]`, 'citation');
    setI18nAttr(anchor, { 'aria-label': ['answer.cite_label', { n }] });
    return anchor;
  });
  if (answer.comparison) box.append(comparisonTable(answer.comparison)); // the table first: it reads best
  box.append(paragraph);
  const cited = answer.citations || [];
  if (cited.length) {
    box.append(h('div', { className: 'sources' },
      h('h3', { i18n: 'advice.products' }),
      h('ol', { className: 'plain product-links' }, cited.map((source) => h('li', {},
        `[${source.number}] `, link(source, source.title, links ? 'cited-product' : 'citation'))))));
  }
  if (answer.applied_constraints?.length) {
    box.append(h('p', { className: 'applied small' },
      h('span', { className: 'muted', i18n: 'advice.applied' }), ' ',
      answer.applied_constraints.map((label) => constraintChip(label))));
  }
  const dropped = droppedNote(answer);
  if (dropped) box.append(dropped); // append(null) would write "null"
}

/** AnswerResponse.comparison: {product_ids, titles, rows: [{attribute, values}]}. */
function comparisonTable(comparison) {
  return h('div', { className: 'table-wrap' },
    h('table', { className: 'comparison', 'data-testid': 'comparison' },
      h('caption', { i18n: 'advice.comparison' }),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', i18n: 'compare.attribute' }),
        comparison.product_ids.map((id, i) => h('th', { scope: 'col' },
          h('a', { href: productHref(id), 'data-product-id': id, text: comparison.titles[i] ?? id }))))),
      h('tbody', {}, comparison.rows.map((row) => h('tr', {},
        h('th', { scope: 'row', text: row.attribute }),
        row.values.map((value) => (value === null || value === undefined
          ? h('td', { className: 'muted' }, h('span', { 'aria-hidden': 'true', text: '—' }), h('span', { className: 'sr-only', i18n: 'compare.not_stated' }))
          : h('td', { text: value }))))))));
}

function showAdvice() {
  if (!advice.view) advice.view = buildAdviceView();
  mount(advice.view);
}

// ---------------------------------------------------------------------------------------
// 5d. Privacy view (#/privacy)
// ---------------------------------------------------------------------------------------

/** Opt-out: PUT /users/{id}/personalization {"enabled": bool} → ProfileResponse, whose
 * `personalization` is false for a shopper who opted out. Erasure: DELETE /users/{id}. */
const privacy = { view: null, optedOut: false };

function buildPrivacyView() {
  const status = h('p', { className: 'status', 'data-testid': 'privacy-status', role: 'status', 'aria-live': 'polite' });
  const optOut = h('input', { id: 'opt-out', type: 'checkbox', disabled: true });
  const confirm = h('div', { className: 'confirm', id: 'erase-confirm-box', hidden: true },
    h('p', { className: 'warning', i18n: 'privacy.erase_confirm_text' }),
    h('div', { className: 'actions' },
      h('button', { type: 'button', id: 'erase-confirm', className: 'danger', i18n: 'privacy.erase_confirm' }),
      h('button', { type: 'button', id: 'erase-cancel', className: 'secondary', i18n: 'privacy.cancel' })));
  const erase = h('button', { type: 'button', id: 'erase', className: 'danger', disabled: true, 'aria-controls': 'erase-confirm-box', 'aria-expanded': 'false', i18n: 'privacy.erase' });
  const view = h('section', { className: 'view privacy-view', 'data-testid': 'privacy', 'aria-labelledby': 'privacy-title' },
    h('h1', { id: 'privacy-title', tabindex: '-1', i18n: 'privacy.title' }),
    h('p', { className: 'muted', i18n: 'privacy.intro' }),
    h('section', { className: 'card', 'aria-labelledby': 'known-title' },
      h('h2', { id: 'known-title', i18n: 'privacy.known' }),
      h('div', { 'data-testid': 'profile-summary', className: 'profile-summary', 'aria-live': 'polite' },
        h('p', { className: 'muted', i18n: 'privacy.loading' }))),
    h('section', { className: 'card', 'aria-labelledby': 'settings-title' },
      h('h2', { id: 'settings-title', i18n: 'privacy.settings' }),
      h('div', { className: 'field check' }, optOut, h('label', { for: 'opt-out', i18n: 'privacy.opt_out' }))),
    h('section', { className: 'card', 'aria-labelledby': 'erase-title' },
      h('h2', { id: 'erase-title', i18n: 'privacy.erase_title' }),
      h('p', { className: 'muted', i18n: 'privacy.erase_hint' }),
      erase, confirm),
    status);
  optOut.addEventListener('change', () => setOptOut(optOut.checked));
  erase.addEventListener('click', () => {
    confirm.hidden = false;
    erase.setAttribute('aria-expanded', 'true');
    view.querySelector('#erase-confirm').focus();
  });
  confirm.querySelector('#erase-cancel').addEventListener('click', () => {
    closeEraseConfirm();
    setI18n(status, 'privacy.cancelled');
    erase.focus();
  });
  confirm.querySelector('#erase-confirm').addEventListener('click', eraseData);
  return view;
}

function closeEraseConfirm() {
  privacy.view.querySelector('#erase-confirm-box').hidden = true;
  privacy.view.querySelector('#erase').setAttribute('aria-expanded', 'false');
}

async function showPrivacy() {
  privacy.view = buildPrivacyView();
  mount(privacy.view);
  await ensureSession().catch(() => null);
  const user = currentUser();
  const summary = privacy.view.querySelector('[data-testid=profile-summary]');
  if (!user) {
    summary.replaceChildren(h('p', { i18n: 'privacy.no_user' }));
    return;
  }
  try {
    const profile = await api(`/users/${enc(user)}/profile`);
    renderProfile(profile);
    privacy.view.querySelector('#erase').disabled = false;
  } catch (error) {
    summary.replaceChildren(h('p'));
    showError(summary.firstChild, error);
    privacy.view.querySelector('#erase').disabled = false; // erasure may still work
  }
}

/** ProfileResponse: {user_id, personalization, profile: {events, updated_at, brands:
 * [{name, affinity}], categories: [...], price_band: {low, high} | null} | null,
 * recent_events: [{event_id, type, at, product_id?, query?}]}. */
function renderProfile(data) {
  const view = privacy.view;
  privacy.optedOut = !data.personalization;
  const optOut = view.querySelector('#opt-out');
  optOut.checked = privacy.optedOut;
  optOut.disabled = false;
  const summary = view.querySelector('[data-testid=profile-summary]');
  const profile = data.profile;
  const parts = [];
  if (privacy.optedOut) parts.push(h('p', { className: 'note', i18n: 'privacy.off_note' }));
  if (!profile || (!profile.events && !profile.brands?.length && !profile.categories?.length)) {
    parts.push(h('p', { i18n: 'privacy.nothing' }));
  } else {
    const list = h('dl', { className: 'facts' },
      h('dt', { i18n: 'privacy.events' }), h('dd', { text: String(profile.events ?? 0) }));
    if (profile.updated_at) list.append(h('dt', { i18n: 'privacy.updated' }), h('dd', { text: formatTime(profile.updated_at) }));
    if (profile.price_band) {
      list.append(h('dt', { i18n: 'privacy.price_band' }),
        h('dd', { text: `${formatNumber(profile.price_band.low, 2)} – ${formatNumber(profile.price_band.high, 2)}` }));
    }
    parts.push(list, affinityList('privacy.brands', profile.brands), affinityList('privacy.categories', profile.categories));
  }
  parts.push(recentEvents(data.recent_events || []));
  summary.replaceChildren(...parts.filter(Boolean));
}

function affinityList(titleKey, items) {
  if (!items?.length) return null;
  return h('div', { className: 'affinities' },
    h('h3', { i18n: titleKey }),
    h('ul', { className: 'plain' }, items.map((item) => {
      const pct = Math.round((item.affinity ?? 0) * 100);
      return h('li', { className: 'affinity' },
        h('span', { className: 'affinity-name', text: item.name }),
        h('span', { className: 'meter', 'aria-hidden': 'true' }, h('span', { style: { width: `${pct}%` } })),
        h('span', { className: 'muted small', i18n: ['privacy.affinity', { pct }] }));
    })));
}

function recentEvents(events) {
  return h('div', { className: 'recent' },
    h('h3', { i18n: 'privacy.recent' }),
    events.length
      ? h('ol', { className: 'plain recent-list' }, events.map((event) => h('li', {},
        h('span', { className: 'badge', i18n: `event.${event.type}` }), ' ',
        event.product_id ? h('a', { href: productHref(event.product_id), text: event.product_id }) : null,
        event.query ? h('q', { text: event.query }) : null, ' ',
        h('time', { className: 'muted small', datetime: new Date(event.at * 1000).toISOString(), text: formatTime(event.at) }))))
      : h('p', { className: 'muted', i18n: 'privacy.no_recent' }));
}

async function setOptOut(off) {
  const view = privacy.view;
  const optOut = view.querySelector('#opt-out');
  const status = view.querySelector('[data-testid=privacy-status]');
  clearStatus(status);
  optOut.disabled = true;
  try {
    const profile = await api(`/users/${enc(currentUser())}/personalization`, { method: 'PUT', body: { enabled: !off } });
    renderProfile(profile);
    setI18n(status, profile.personalization ? 'privacy.opted_in' : 'privacy.opted_out');
  } catch (error) {
    optOut.checked = !off;
    showError(status, error);
  } finally {
    optOut.disabled = false;
  }
}

async function eraseData() {
  const view = privacy.view;
  const status = view.querySelector('[data-testid=privacy-status]');
  const confirmButton = view.querySelector('#erase-confirm');
  clearStatus(status);
  confirmButton.disabled = true;
  setI18n(status, 'privacy.erasing');
  try {
    const erased = await api(`/users/${enc(currentUser())}`, { method: 'DELETE' });
    closeEraseConfirm();
    advice.conversationId = null; // its conversations went with it
    advice.turns = 0;
    setI18n(status, 'privacy.erased', {
      profile: t(erased.profile ? 'privacy.removed' : 'privacy.none'),
      events: erased.events,
      settings: t(erased.settings ? 'privacy.removed' : 'privacy.none'),
      results: erased.cached_results,
      conversations: erased.conversations,
    });
    const profile = await api(`/users/${enc(currentUser())}/profile`).catch(() => null);
    if (profile && privacy.view === view) renderProfile(profile);
    view.querySelector('#erase').focus();
  } catch (error) {
    showError(status, error);
  } finally {
    confirmButton.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------
// 6. Router, language, start-up
// ---------------------------------------------------------------------------------------

const viewRoot = () => document.getElementById('view');
let routed = false;

function mount(view) {
  const root = viewRoot();
  if (root.firstElementChild !== view || root.childElementCount !== 1) root.replaceChildren(view);
}

/** The route of the hash: #/, #/?q=…, #/product/<id>?passage=…, #/advice, #/privacy; null
 * for an in-page anchor such as the skip link's #view. */
function parseRoute() {
  const hash = location.hash;
  if (hash && !hash.startsWith('#/')) return null;
  const [path, query = ''] = hash.slice(1).split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'product' && parts.length > 1) {
    try {
      return { name: 'product', id: decodeURIComponent(parts.slice(1).join('/')), params };
    } catch {
      return { name: 'search', params };
    }
  }
  if (parts[0] === 'advice' || parts[0] === 'privacy') return { name: parts[0], params };
  return { name: 'search', params };
}

function route() {
  let current = parseRoute();
  if (!current) {
    if (viewRoot().querySelector('.view')) return; // an in-page anchor: stay
    current = { name: 'search', params: new URLSearchParams() };
  }
  if (current.name !== 'product') {
    product.controller?.abort();
    product.askController?.abort();
    product.view = null;
  }
  for (const link of document.querySelectorAll('.site-nav a[data-route]')) {
    if (link.dataset.route === current.name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (current.name === 'product') showProduct(current.id, current.params);
  else if (current.name === 'advice') showAdvice();
  else if (current.name === 'privacy') showPrivacy();
  else showSearch(current.params);
  if (routed && current.name !== 'product') viewRoot().querySelector('h1')?.focus({ preventScroll: false });
  routed = true;
}

/** Switch the interface to `lang`: <html lang>, every translated string, cached views too. */
function applyLanguage(lang) {
  setLang(lang);
  document.documentElement.lang = getLang();
  translateTree(document);
  for (const view of [search.view, advice.view, privacy.view]) if (view && !view.isConnected) translateTree(view);
  document.title = t('app.title');
  document.getElementById('lang-toggle').setAttribute('lang', getLang() === 'zh' ? 'en' : 'zh');
}

/** The interface follows the language of what the shopper typed last. */
function followTypedLanguage(text) {
  const lang = languageOf(text);
  if (lang && lang !== getLang()) applyLanguage(lang);
}

/** Enter sends, Shift+Enter makes a new line (never while an IME is composing Chinese). */
function submitOnEnter(textarea, form) {
  textarea.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    form.requestSubmit();
  });
}

function boot() {
  applyLanguage(getLang());
  document.getElementById('lang-toggle').addEventListener('click', () => applyLanguage(getLang() === 'zh' ? 'en' : 'zh'));
  document.getElementById('signin-form').addEventListener('submit', onSignInSubmit);
  document.getElementById('signin-demo').addEventListener('click', onSignInDemo);
  document.getElementById('change-signin').addEventListener('click', () => {
    waitForSignIn('auth.needed', auth.current).then(() => route());
  });
  window.addEventListener('hashchange', route);
  route();
  ensureSession().catch((error) => showError(document.getElementById('global-status'), error));
}

boot();
