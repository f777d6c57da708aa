/**
 * A vector as the API's compact form: the base64 of its little-endian float32s (a quarter of the
 * JSON array's size, and the precision the service stores anyway). `btoa` keeps it free of
 * Node's Buffer, so the adapter runs wherever `fetch` does.
 */
export function float32Base64(vector: readonly number[]): string {
  const view = new DataView(new ArrayBuffer(vector.length * 4));
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i], true);
  const bytes = new Uint8Array(view.buffer);
  let binary = '';
  // String.fromCharCode takes its bytes as arguments: chunks keep under the engines' argument limits.
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}
