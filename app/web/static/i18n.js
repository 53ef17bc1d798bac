/**
 * Shopguide web page: the interface's words in English and Chinese.
 *
 * `t(key, vars)` looks a key up in the current language (falling back to English, then to
 * the key itself) and fills `{name}` placeholders. Elements carrying `data-i18n` (text) or
 * `data-i18n-attr` (attributes, JSON `{"attr": "key"}`) are re-translated in place by
 * `translateTree` when the language changes, so nothing has to be re-rendered.
 */

export const LANGUAGES = ['en', 'zh'];
const STORAGE_KEY = 'shopguide.lang';

export const STRINGS = {
  en: {
    'app.title': 'Shopguide',
    'app.tagline': 'Search, ask, compare',
    'app.skip': 'Skip to content',
    'app.loading': 'Loading…',
    'lang.toggle': '中文',
    'lang.toggle_label': 'Switch the page to Chinese',

    'nav.label': 'Main',
    'nav.search': 'Search',
    'nav.product': 'Product',
    'nav.advice': 'Advice',
    'nav.privacy': 'Privacy',

    'auth.title': 'Sign in',
    'auth.needed': 'Demo sessions are off on this server. Paste the shopper token your shop gave you, or an API key.',
    'auth.rejected': 'The server did not accept these credentials. Paste a valid shopper token or API key.',
    'auth.token': 'Shopper token or API key',
    'auth.user': 'Shopper id (optional; read from a shopper token when left empty)',
    'auth.submit': 'Continue',
    'auth.demo': 'Try a demo session',
    'auth.demo_off': 'Demo sessions are off on this server.',
    'auth.who_demo': 'Demo shopper {user}',
    'auth.who_user': 'Shopper {user}',
    'auth.who_key': 'Signed in with a key (no shopper id)',
    'auth.change': 'Change sign-in',

    'search.title': 'Search products',
    'search.label': 'What are you looking for?',
    'search.placeholder': 'e.g. noise cancelling headphones under $100',
    'search.submit': 'Search',
    'search.searching': 'Searching…',
    'search.empty_query': 'Type what you are looking for first.',
    'search.count': '{n} results for “{query}” (page {page}).',
    'search.none': 'No products match “{query}” with these constraints.',
    'search.personalized': 'Ordered for you from your activity.',
    'search.understood': 'Understood from your query:',
    'search.chip_remove': 'Remove “{label}” and search again',
    'search.results_label': 'Search results',
    'search.prev': 'Previous page',
    'search.next': 'Next page',
    'search.page': 'Page {page}',
    'search.why': 'Why?',
    'search.hide_why': 'Hide why',

    'filters.title': 'Filters',
    'filters.price_min': 'Min price',
    'filters.price_max': 'Max price',
    'filters.brand': 'Brand',
    'filters.brand_hint': 'Separate several with commas',
    'filters.in_stock': 'In stock only',
    'filters.rating_min': 'Min rating (0–5)',
    'filters.bad_range': 'The minimum price must not be above the maximum price.',

    'chip.price_max': 'Price ≤ {v}',
    'chip.price_min': 'Price ≥ {v}',
    'chip.price_range': 'Price {a}–{b}',
    'chip.price_below': 'Price < {v}',
    'chip.price_above': 'Price > {v}',
    'chip.rating': 'Rating ≥ {v}',
    'chip.in_stock': 'In stock',
    'chip.brand': 'Brand: {v}',
    'chip.not_brand': 'Not {v}',
    'chip.shown_last': 'Among the products shown last',

    'why.found_by': 'Found by',
    'why.rank': '#{rank}',
    'why.score': 'score {score}',
    'why.retriever.lexical': 'keyword match',
    'why.retriever.semantic': 'meaning match',
    'why.matched': 'Matched words',
    'why.no_terms': 'No exact words: found by meaning.',
    'why.scores': 'Scores',
    'why.fused': 'combined {score}',
    'why.rerank': 're-ranked {score}',
    'why.personal': 'Personalization',
    'why.relevance_rank': 'Relevance alone ranked it #{rank}.',
    'why.moved_up': 'Moved up {n} for you.',
    'why.moved_down': 'Moved down {n}.',
    'why.not_moved': 'Not moved.',
    'why.personal_score': 'Fit with your taste: {score}',
    'field.title': 'title',
    'field.brand': 'brand',
    'field.category': 'category',
    'field.attributes': 'attributes',
    'field.description': 'description',
    'field.body': 'text',

    'stock.in': 'In stock',
    'stock.out': 'Out of stock',
    'stock.unknown': 'Stock unknown',
    'rating.label': 'Rated {r} out of 5',
    'rating.reviews': '({n} reviews)',
    'value.yes': 'yes',
    'value.no': 'no',

    'product.back': '← Back to search',
    'product.loading': 'Loading the product…',
    'product.description': 'Description',
    'product.attributes': 'Specifications',
    'product.attribute': 'Attribute',
    'product.value': 'Value',
    'product.reviews': 'Reviews',
    'product.no_reviews': 'No reviews yet.',
    'product.review_label': 'Review {n}',
    'product.qa': 'Questions and answers',
    'product.no_qa': 'No questions yet.',
    'product.q': 'Q:',
    'product.a': 'A:',
    'product.aspects': 'What customers say',
    'product.aspects_loading': 'Reading the reviews…',
    'product.no_aspects': 'The reviews do not mention any particular aspect yet.',
    'product.aspects_basis': 'From {with} of {all} reviews.',
    'product.similar': 'Similar products',
    'product.similar_loading': 'Finding similar products…',
    'product.no_similar': 'No similar products found.',
    'aspect.positive': '{n} positive',
    'aspect.negative': '{n} negative',
    'aspect.neutral': '{n} neutral',
    'aspect.mentions': 'reviews mentioning it: {n}',
    'polarity.positive': 'Positive',
    'polarity.negative': 'Negative',
    'polarity.neutral': 'Neutral',

    'ask.title': 'Ask about this product',
    'ask.label': 'Your question',
    'ask.placeholder': 'e.g. How long does the battery last?',
    'ask.submit': 'Ask',
    'ask.you_asked': 'You asked: {q}',

    'answer.thinking': 'Looking through the sources…',
    'answer.queued': 'Waiting for the answer generator (place {place} in line)…',
    'answer.sources': 'Sources',
    'answer.cite_label': 'Source {n}',
    'answer.abstained': 'No answer: the sources do not support one.',
    'answer.closest_passage': 'Closest passage (does not settle it)',
    'answer.cut_off': 'The answer was cut off. Please ask again.',
    'answer.dropped': '{n} statements were left out because the sources did not back them.',
    'kind.description': 'description',
    'kind.attributes': 'specifications',
    'kind.review': 'review',
    'kind.qa': 'Q&A',
    'kind.product': 'product',
    'reason.no_sources': 'Nothing relevant was found.',
    'reason.weak_evidence': 'Nothing found is close enough to the question.',
    'reason.model': 'The sources found do not answer it.',
    'reason.not_answered': 'What the sources say does not settle the question.',
    'reason.unsupported': 'No statement could be backed by the sources.',

    'advice.title': 'Shopping advice',
    'advice.hint': 'Ask for a recommendation, then follow up in the same conversation: “cheaper ones?”, “which of these is waterproof?”, “compare the first two”.',
    'advice.log': 'Conversation',
    'advice.label': 'Your message',
    'advice.placeholder': 'e.g. wireless headphones for the gym under $100',
    'advice.send': 'Send',
    'advice.new': 'New conversation',
    'advice.started': 'A new conversation started.',
    'advice.you': 'You',
    'advice.assistant': 'Shopguide',
    'advice.products': 'Products cited',
    'advice.closest': 'Closest products found (not confirmed to fit):',
    'advice.applied': 'Constraints applied:',
    'advice.comparison': 'Side by side',
    'advice.no_conversations': 'Follow-ups are not available on this server: each message is a new question.',
    'compare.attribute': 'Attribute',
    'compare.not_stated': 'not stated',
    'followup.cheaper': 'Cheaper than the last suggestions.',
    'followup.pricier': 'Pricier than the last suggestions.',
    'followup.among_shown': 'Among the products shown last.',
    'followup.compare': 'Comparing the products you named.',

    'privacy.title': 'Your data',
    'privacy.intro': 'What personalization knows about you, and your choices about it.',
    'privacy.known': 'What personalization knows',
    'privacy.loading': 'Loading your profile…',
    'privacy.nothing': 'Nothing yet: no activity of yours has been recorded.',
    'privacy.events': 'Events counted',
    'privacy.updated': 'Last updated',
    'privacy.price_band': 'Usual price range',
    'privacy.brands': 'Top brands',
    'privacy.categories': 'Top categories',
    'privacy.affinity': '{pct}% of the strongest',
    'privacy.recent': 'Recent activity',
    'privacy.no_recent': 'No recent activity.',
    'privacy.off_note': 'Personalization is off: your activity is not stored and results are not personalized.',
    'privacy.settings': 'Personalization',
    'privacy.opt_out': 'Turn personalization off (do not store my activity or personalize my results)',
    'privacy.opted_out': 'Personalization is now off.',
    'privacy.opted_in': 'Personalization is now on.',
    'privacy.erase_title': 'Erase my data',
    'privacy.erase_hint': 'Removes your profile, activity, settings, cached personalized results and conversations. This cannot be undone.',
    'privacy.erase': 'Erase my data',
    'privacy.erase_confirm_text': 'Erase everything kept about you? This cannot be undone.',
    'privacy.erase_confirm': 'Yes, erase everything',
    'privacy.cancel': 'Cancel',
    'privacy.erasing': 'Erasing…',
    'privacy.erased': 'Erased: profile {profile}, {events} events, settings {settings}, {results} cached results, {conversations} conversations.',
    'privacy.removed': 'removed',
    'privacy.none': 'none',
    'privacy.cancelled': 'Nothing was erased.',
    'privacy.no_user': 'These controls need a shopper id. Sign in with a shopper token, or give a shopper id with your API key.',
    'event.view': 'Viewed',
    'event.click': 'Clicked',
    'event.cart': 'Added to cart',
    'event.purchase': 'Bought',
    'event.search': 'Searched',

    'error.network': 'Could not reach the server. Check your connection and try again.',
    'error.not_ready': 'The answer generator is still loading. Search works meanwhile; try again in {s} s.',
    'error.busy': 'The answer generator is busy. Try again in {s} s.',
    'error.timeout': 'The answer took too long. Please try again.',
    'error.rate_limited': 'Too many requests. Try again in {s} s.',
    'error.forbidden': 'Not allowed: {message}',
    'error.not_found': 'Not found.',
    'error.invalid': 'The request was not accepted: {message}',
    'error.profiles_off': 'Profiles are unavailable on this server.',
    'error.generic': 'Something went wrong: {message}',
  },

  zh: {
    'app.title': 'Shopguide 导购',
    'app.tagline': '搜索、提问、比较',
    'app.skip': '跳到正文',
    'app.loading': '加载中…',
    'lang.toggle': 'English',
    'lang.toggle_label': '将页面切换为英文',

    'nav.label': '主导航',
    'nav.search': '搜索',
    'nav.product': '商品',
    'nav.advice': '导购建议',
    'nav.privacy': '隐私',

    'auth.title': '登录',
    'auth.needed': '此服务器未开启演示会话。请粘贴商店提供的购物者令牌，或 API 密钥。',
    'auth.rejected': '服务器不接受这些凭据。请粘贴有效的购物者令牌或 API 密钥。',
    'auth.token': '购物者令牌或 API 密钥',
    'auth.user': '购物者 ID（可选；留空时从购物者令牌中读取）',
    'auth.submit': '继续',
    'auth.demo': '使用演示会话',
    'auth.demo_off': '此服务器未开启演示会话。',
    'auth.who_demo': '演示购物者 {user}',
    'auth.who_user': '购物者 {user}',
    'auth.who_key': '已用密钥登录（无购物者 ID）',
    'auth.change': '更换登录方式',

    'search.title': '搜索商品',
    'search.label': '您想找什么？',
    'search.placeholder': '例如：降噪耳机 500元以下 不要三星',
    'search.submit': '搜索',
    'search.searching': '正在搜索…',
    'search.empty_query': '请先输入要找的商品。',
    'search.count': '“{query}”共 {n} 个结果（第 {page} 页）。',
    'search.none': '在这些条件下，没有商品符合“{query}”。',
    'search.personalized': '已根据您的浏览记录排序。',
    'search.understood': '从您的搜索中识别到：',
    'search.chip_remove': '移除“{label}”并重新搜索',
    'search.results_label': '搜索结果',
    'search.prev': '上一页',
    'search.next': '下一页',
    'search.page': '第 {page} 页',
    'search.why': '为什么？',
    'search.hide_why': '收起原因',

    'filters.title': '筛选',
    'filters.price_min': '最低价格',
    'filters.price_max': '最高价格',
    'filters.brand': '品牌',
    'filters.brand_hint': '多个品牌用逗号分隔',
    'filters.in_stock': '只看有货',
    'filters.rating_min': '最低评分（0–5）',
    'filters.bad_range': '最低价格不能高于最高价格。',

    'chip.price_max': '价格 ≤ {v}',
    'chip.price_min': '价格 ≥ {v}',
    'chip.price_range': '价格 {a}–{b}',
    'chip.price_below': '价格 < {v}',
    'chip.price_above': '价格 > {v}',
    'chip.rating': '评分 ≥ {v}',
    'chip.in_stock': '有货',
    'chip.brand': '品牌：{v}',
    'chip.not_brand': '不要 {v}',
    'chip.shown_last': '在上次展示的商品中',

    'why.found_by': '检索来源',
    'why.rank': '第 {rank} 名',
    'why.score': '分数 {score}',
    'why.retriever.lexical': '关键词匹配',
    'why.retriever.semantic': '语义匹配',
    'why.matched': '匹配的词',
    'why.no_terms': '没有完全匹配的词：按语义找到。',
    'why.scores': '分数',
    'why.fused': '综合 {score}',
    'why.rerank': '重排 {score}',
    'why.personal': '个性化',
    'why.relevance_rank': '仅按相关性排第 {rank} 名。',
    'why.moved_up': '为您上移了 {n} 位。',
    'why.moved_down': '下移了 {n} 位。',
    'why.not_moved': '位置未变。',
    'why.personal_score': '与您偏好的契合度：{score}',
    'field.title': '标题',
    'field.brand': '品牌',
    'field.category': '类目',
    'field.attributes': '参数',
    'field.description': '描述',
    'field.body': '正文',

    'stock.in': '有货',
    'stock.out': '缺货',
    'stock.unknown': '库存未知',
    'rating.label': '评分 {r}（满分 5）',
    'rating.reviews': '（{n} 条评价）',
    'value.yes': '是',
    'value.no': '否',

    'product.back': '← 返回搜索',
    'product.loading': '正在加载商品…',
    'product.description': '商品描述',
    'product.attributes': '规格参数',
    'product.attribute': '参数',
    'product.value': '值',
    'product.reviews': '用户评价',
    'product.no_reviews': '暂无评价。',
    'product.review_label': '评价 {n}',
    'product.qa': '问答',
    'product.no_qa': '暂无问答。',
    'product.q': '问：',
    'product.a': '答：',
    'product.aspects': '买家怎么说',
    'product.aspects_loading': '正在分析评价…',
    'product.no_aspects': '评价中尚未提到具体方面。',
    'product.aspects_basis': '基于 {all} 条评价中的 {with} 条。',
    'product.similar': '相似商品',
    'product.similar_loading': '正在查找相似商品…',
    'product.no_similar': '没有找到相似商品。',
    'aspect.positive': '{n} 条好评',
    'aspect.negative': '{n} 条差评',
    'aspect.neutral': '{n} 条中性',
    'aspect.mentions': '{n} 条评价提到',
    'polarity.positive': '正面',
    'polarity.negative': '负面',
    'polarity.neutral': '中性',

    'ask.title': '就此商品提问',
    'ask.label': '您的问题',
    'ask.placeholder': '例如：电池能用多久？',
    'ask.submit': '提问',
    'ask.you_asked': '您的问题：{q}',

    'answer.thinking': '正在查阅资料…',
    'answer.queued': '正在排队等待生成回答（第 {place} 位）…',
    'answer.sources': '来源',
    'answer.cite_label': '来源 {n}',
    'answer.abstained': '无法回答：资料不足以支持答案。',
    'answer.closest_passage': '最接近的一段（不足以回答）',
    'answer.cut_off': '回答中断了，请重新提问。',
    'answer.dropped': '有 {n} 条陈述因缺乏资料支持而被略去。',
    'kind.description': '描述',
    'kind.attributes': '参数',
    'kind.review': '评价',
    'kind.qa': '问答',
    'kind.product': '商品',
    'reason.no_sources': '没有找到相关内容。',
    'reason.weak_evidence': '找到的内容与问题不够接近。',
    'reason.model': '找到的资料没有回答这个问题。',
    'reason.not_answered': '资料内容不足以确定答案。',
    'reason.unsupported': '没有任何陈述能得到资料支持。',

    'advice.title': '导购建议',
    'advice.hint': '先提出需求，再在同一对话中追问：“便宜一点的？”、“哪款防水？”、“比较前两个”。',
    'advice.log': '对话',
    'advice.label': '您的消息',
    'advice.placeholder': '例如：健身用的无线耳机，500元以下',
    'advice.send': '发送',
    'advice.new': '新对话',
    'advice.started': '已开始新对话。',
    'advice.you': '您',
    'advice.assistant': 'Shopguide',
    'advice.products': '引用的商品',
    'advice.closest': '找到的最接近的商品（未确认符合）：',
    'advice.applied': '已应用的条件：',
    'advice.comparison': '对比',
    'advice.no_conversations': '此服务器不支持追问：每条消息都作为新问题。',
    'compare.attribute': '参数',
    'compare.not_stated': '未说明',
    'followup.cheaper': '比上次推荐的更便宜。',
    'followup.pricier': '比上次推荐的更贵。',
    'followup.among_shown': '在上次展示的商品中。',
    'followup.compare': '比较您提到的商品。',

    'privacy.title': '您的数据',
    'privacy.intro': '个性化功能了解您的哪些信息，以及您的选择。',
    'privacy.known': '个性化了解的信息',
    'privacy.loading': '正在加载您的资料…',
    'privacy.nothing': '暂无：尚未记录您的任何活动。',
    'privacy.events': '已计入的事件',
    'privacy.updated': '最近更新',
    'privacy.price_band': '常见价格区间',
    'privacy.brands': '常看品牌',
    'privacy.categories': '常看类目',
    'privacy.affinity': '为最高者的 {pct}%',
    'privacy.recent': '最近活动',
    'privacy.no_recent': '暂无最近活动。',
    'privacy.off_note': '个性化已关闭：不会存储您的活动，结果也不做个性化。',
    'privacy.settings': '个性化',
    'privacy.opt_out': '关闭个性化（不存储我的活动，不对结果做个性化）',
    'privacy.opted_out': '个性化已关闭。',
    'privacy.opted_in': '个性化已开启。',
    'privacy.erase_title': '删除我的数据',
    'privacy.erase_hint': '将删除您的资料、活动、设置、缓存的个性化结果和对话。此操作无法撤销。',
    'privacy.erase': '删除我的数据',
    'privacy.erase_confirm_text': '确定删除与您有关的全部数据吗？此操作无法撤销。',
    'privacy.erase_confirm': '确定，全部删除',
    'privacy.cancel': '取消',
    'privacy.erasing': '正在删除…',
    'privacy.erased': '已删除：资料 {profile}，{events} 个事件，设置 {settings}，{results} 条缓存结果，{conversations} 个对话。',
    'privacy.removed': '已删除',
    'privacy.none': '无',
    'privacy.cancelled': '未删除任何数据。',
    'privacy.no_user': '这些功能需要购物者 ID。请用购物者令牌登录，或在使用 API 密钥时填写购物者 ID。',
    'event.view': '浏览',
    'event.click': '点击',
    'event.cart': '加入购物车',
    'event.purchase': '购买',
    'event.search': '搜索',

    'error.network': '无法连接服务器，请检查网络后重试。',
    'error.not_ready': '回答生成器仍在加载。搜索可正常使用；请 {s} 秒后重试。',
    'error.busy': '回答生成器正忙，请 {s} 秒后重试。',
    'error.timeout': '回答超时，请重试。',
    'error.rate_limited': '请求过多，请 {s} 秒后重试。',
    'error.forbidden': '无权操作：{message}',
    'error.not_found': '未找到。',
    'error.invalid': '请求未被接受：{message}',
    'error.profiles_off': '此服务器的用户资料功能不可用。',
    'error.generic': '出错了：{message}',
  },
};

let current = initialLanguage();

function initialLanguage() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (LANGUAGES.includes(saved)) return saved;
  } catch {
    /* storage unavailable: fall through */
  }
  return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

/** The current language: "en" or "zh". */
export function getLang() {
  return current;
}

/** Switch to `lang` and remember it; returns whether it changed. */
export function setLang(lang) {
  if (!LANGUAGES.includes(lang) || lang === current) return false;
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    /* not remembered: fine */
  }
  return true;
}

/** The BCP 47 locale used for numbers, prices and dates. */
export function locale() {
  return current === 'zh' ? 'zh-CN' : 'en-US';
}

/** `key` in the current language with `{name}` placeholders filled from `vars`. */
export function t(key, vars) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** The language of what the shopper typed: "zh" with any Chinese character, "en" with any
 * Latin letter, otherwise null (digits and symbols say nothing). */
export function languageOf(text) {
  if (/[\u3400-\u9fff\uf900-\ufaff]/.test(text)) return 'zh';
  if (/[A-Za-z]/.test(text)) return 'en';
  return null;
}

function parseVars(json) {
  if (!json) return undefined;
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** Re-translate every `data-i18n` / `data-i18n-attr` element under `root` (and root itself). */
export function translateTree(root) {
  const nodes = (selector) => {
    const found = [...root.querySelectorAll(selector)];
    if (root.matches?.(selector)) found.unshift(root);
    return found;
  };
  for (const node of nodes('[data-i18n]')) {
    node.textContent = t(node.dataset.i18n, parseVars(node.dataset.i18nVars));
  }
  for (const node of nodes('[data-i18n-attr]')) {
    const map = parseVars(node.dataset.i18nAttr) || {};
    for (const [attr, spec] of Object.entries(map)) {
      const [key, vars] = Array.isArray(spec) ? spec : [spec];
      node.setAttribute(attr, t(key, vars));
    }
  }
}
