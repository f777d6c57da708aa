/**
 * PostgreSQL's binary COPY format for a collection's vectors table (block_id text, chunk int4,
 * embedding vector): the fastest way to bulk-load on PostgreSQL, with no text formatting or
 * parsing of floats. https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4
 */
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/** Encodes rows of (block id, chunk, vector) as one binary COPY payload. */
export function encodeVectorRows(ids: readonly string[], chunks: readonly number[], vectors: readonly Float32Array[]): Buffer {
  let size = SIGNATURE.length + 8 + 2;
  const idBytes = ids.map((id) => Buffer.from(id, 'utf8'));
  for (let i = 0; i < ids.length; i++) size += 2 + 4 + idBytes[i].length + 4 + 4 + 4 + 4 + vectors[i].length * 4;
  const buf = Buffer.allocUnsafe(size);
  let o = SIGNATURE.copy(buf, 0);
  o = buf.writeInt32BE(0, o); // flags
  o = buf.writeInt32BE(0, o); // header extension length
  for (let i = 0; i < ids.length; i++) {
    const v = vectors[i];
    o = buf.writeInt16BE(3, o);
    o = buf.writeInt32BE(idBytes[i].length, o);
    o += idBytes[i].copy(buf, o);
    o = buf.writeInt32BE(4, o);
    o = buf.writeInt32BE(chunks[i], o);
    // pgvector's binary form: int16 dimensions, int16 unused, float4 × dimensions (big-endian).
    o = buf.writeInt32BE(4 + v.length * 4, o);
    o = buf.writeInt16BE(v.length, o);
    o = buf.writeInt16BE(0, o);
    // Copy the little-endian floats in one go, then byte-swap them in place (native, no per-float call).
    const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    bytes.copy(buf, o);
    buf.subarray(o, o + bytes.length).swap32();
    o += bytes.length;
  }
  buf.writeInt16BE(-1, o);
  return buf;
}
