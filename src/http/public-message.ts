/**
 * What an HTTP client may read of an internal failure: the message with host addresses and file
 * system paths taken out. They describe the deployment (where the database listens, where the
 * data lives), not the request, and the log keeps the full message for the operator.
 */
const ADDRESS = new RegExp(
  [
    String.raw`\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b`, // IPv4, with a port
    String.raw`\[[0-9a-f:.]+\](?::\d{1,5})?`, // [IPv6]:port
    String.raw`\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*:\d{2,5}\b`, // host:port
    String.raw`(?<=\b(?:ENOTFOUND|EAI_AGAIN) )\S+`, // getaddrinfo ENOTFOUND db.internal
  ].join('|'),
  'gi',
);
/** An absolute path of two or more segments, where a word could start. */
const PATH = /(?<=^|[\s'"(=:,])\/(?:[\w.@+-]+\/)+[\w.@+-]*/g;

export function publicMessage(message: string): string {
  return message.replace(ADDRESS, '[address]').replace(PATH, '[path]');
}
