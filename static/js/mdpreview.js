// A small, safe Markdown preview for the note-taker's composer. It builds DOM nodes (never
// innerHTML), so nothing typed can become markup. It covers what notes mostly use: paragraphs
// with line breaks, "- " bullets nested by two spaces, **bold**, *italic* / _italic_, `code`,
// [links](https://...), bare links and photos from our own /media/ store. The server's
// rendering (markdown-it + nh3) is what is posted; this is only a preview.

const INLINE = new RegExp(
  [
    String.raw`!\[([^\]]*)\]\(([^)\s]+)\)`,      // 1,2 image
    String.raw`\[([^\]]+)\]\(([^)\s]+)\)`,       // 3,4 link
    String.raw`\*\*(.+?)\*\*`,                   // 5 bold
    String.raw`\*([^*\s](?:[^*]*[^*\s])?)\*`,    // 6 italic
    String.raw`\b_([^_\s](?:[^_]*[^_\s])?)_\b`,  // 7 italic
    "`([^`]+)`",                                 // 8 code
    String.raw`(https?://[^\s<>()"']+)`,         // 9 bare link
  ].join("|"),
  "g",
);

// Where a /media/ path is shown from. The note-taker page points photos still waiting in its
// outbox (/media/local-<client id>) at the copy on the device, so no request is made for them.
let imageSource = (path) => path;
export function setImageSource(fn) { imageSource = fn; }

function safeHref(url) {
  return /^(https?:\/\/|mailto:)/i.test(url) ? url : null;
}

function link(href, children) {
  const a = document.createElement("a");
  a.href = href;
  a.rel = "nofollow noopener noreferrer";
  a.append(...children);
  return a;
}

export function inline(text) {
  const out = [];
  let last = 0;
  // matchAll works on a copy of the pattern, so the recursive calls below cannot disturb it.
  for (const m of text.matchAll(INLINE)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] !== undefined) {
      if (m[2].startsWith("/media/")) {
        const img = document.createElement("img");
        img.alt = m[1];
        img.src = imageSource(m[2]);
        out.push(img);
      } else if (safeHref(m[2])) {
        out.push(link(m[2], [m[1] || m[2]]));
      } else {
        out.push(m[0]);
      }
    } else if (m[4] !== undefined) {
      const href = safeHref(m[4]);
      out.push(href ? link(href, inline(m[3])) : m[0]);
    } else if (m[5] !== undefined || m[6] !== undefined || m[7] !== undefined) {
      const el = document.createElement(m[5] !== undefined ? "strong" : "em");
      el.append(...inline(m[5] ?? m[6] ?? m[7]));
      out.push(el);
    } else if (m[8] !== undefined) {
      const code = document.createElement("code");
      code.textContent = m[8];
      out.push(code);
    } else {
      out.push(link(m[9], [m[9]]));
    }
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

const BULLET = /^( *)[-*+] (.*)$/;

// Returns a DocumentFragment with the preview of `text`.
export function renderPreview(text) {
  const root = document.createDocumentFragment();
  let paragraph = null;
  let lists = [];  // stack of {ul, level, li}

  const closeBlocks = () => { paragraph = null; lists = []; };
  for (const line of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (line.trim() === "") { closeBlocks(); continue; }
    const bullet = BULLET.exec(line);
    if (bullet) {
      paragraph = null;
      const level = Math.floor(bullet[1].length / 2);
      while (lists.length && lists[lists.length - 1].level > level) lists.pop();
      let top = lists[lists.length - 1];
      if (!top || top.level < level) {
        const ul = document.createElement("ul");
        if (top && top.li) top.li.append(ul); else root.append(ul);
        top = { ul, level, li: null };
        lists.push(top);
      }
      const li = document.createElement("li");
      li.append(...inline(bullet[2]));
      top.ul.append(li);
      top.li = li;
      continue;
    }
    if (lists.length && /^ /.test(line)) {  // a continuation line of the current bullet
      const top = lists[lists.length - 1];
      top.li.append(document.createElement("br"), ...inline(line.trim()));
      continue;
    }
    lists = [];
    if (paragraph) {
      paragraph.append(document.createElement("br"), ...inline(line));
    } else {
      paragraph = document.createElement("p");
      paragraph.append(...inline(line));
      root.append(paragraph);
    }
  }
  return root;
}
