/**
 * Parsing the MIME multipart body of a Voldemort REST GET: one part per concurrent version of
 * the key, each with its own headers (X-VOLD-Vector-Clock, Content-Length) and binary content.
 * The coordinator writes it with javax.mail's MimeMultipart and sends `Content-Type:
 * multipart/binary` without a boundary parameter, so the boundary is read from the first line.
 */

export interface MimePart {
  /** Header names in lower case. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');

/** @throws Error when the body is not a well-formed multipart */
export function parseMultipart(body: Buffer, boundary?: string): MimePart[] {
  let delimiter: Buffer;
  let pos: number;
  if (boundary !== undefined) {
    delimiter = Buffer.from(`--${boundary}`);
    pos = body.indexOf(delimiter);
    if (pos === -1) throw new Error('multipart body lacks its boundary');
  } else {
    // The first line that starts with "--" is the delimiter (a preamble may precede it).
    pos = body.subarray(0, 2).toString('latin1') === '--' ? 0 : body.indexOf('\r\n--');
    if (pos === -1) throw new Error('multipart body has no boundary line');
    if (pos !== 0) pos += 2;
    const eol = body.indexOf(CRLF, pos);
    if (eol === -1) throw new Error('multipart boundary line is not terminated');
    delimiter = Buffer.from(body.subarray(pos, eol));
  }
  const parts: MimePart[] = [];
  pos += delimiter.length;
  for (;;) {
    if (body.subarray(pos, pos + 2).toString('latin1') === '--') return parts;
    if (!body.subarray(pos, pos + 2).equals(CRLF)) throw new Error('malformed multipart boundary');
    pos += 2;
    const headerEnd = body.indexOf(HEADER_END, pos);
    const headers = new Map<string, string>();
    let contentStart: number;
    if (body.subarray(pos, pos + 2).equals(CRLF)) {
      contentStart = pos + 2;
    } else {
      if (headerEnd === -1) throw new Error('multipart part headers are not terminated');
      for (const line of body.toString('latin1', pos, headerEnd).split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon <= 0) throw new Error(`malformed multipart header line ${JSON.stringify(line)}`);
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      contentStart = headerEnd + 4;
    }
    const closing = Buffer.concat([CRLF, delimiter]);
    let contentEnd: number;
    const length = headers.get('content-length');
    if (length !== undefined && /^[0-9]+$/.test(length)) {
      // Trust the length: binary content may contain anything, the delimiter included.
      contentEnd = contentStart + Number(length);
      if (!body.subarray(contentEnd, contentEnd + closing.length).equals(closing)) {
        throw new Error('multipart part is shorter or longer than its Content-Length');
      }
    } else {
      contentEnd = body.indexOf(closing, contentStart);
      if (contentEnd === -1) throw new Error('multipart part is not terminated by the boundary');
    }
    parts.push({ headers, body: Buffer.from(body.subarray(contentStart, contentEnd)) });
    pos = contentEnd + closing.length;
  }
}
