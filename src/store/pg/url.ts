/** PostgreSQL URLs, without loading the client: the CLI and the config tell the engines apart with it. */

/** Does `database` name a PostgreSQL database (rather than a SQLite file)? */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/** The URL with its password masked, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    // Not parseable as a URL: mask whatever stands between the user and the host.
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}
