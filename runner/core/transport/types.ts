/** What a module or the engine needs from a connection to one host. */

export interface ExecOptions {
  /** Bytes written to the command's standard input, then closed. */
  stdin?: string | Buffer;
  /** Run through sudo -n (as becomeUser, default root) unless the login user is already that user. */
  become?: boolean;
  becomeUser?: string;
  /** Kill the remote command after this long; the result then has code 124 and timedOut set. */
  timeoutMs?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status; 255 with no output usually means the connection itself failed. */
  code: number;
  timedOut?: boolean;
  /**
   * Set when a stream was longer than what is kept of it (see ./output.ts): its total size in bytes. The
   * stream's text then holds its start, a note saying what was cut, and its end.
   */
  cut?: { stdout?: number; stderr?: number };
}

/**
 * One open connection to one host, used by every task of the run. `exec` runs a POSIX sh script (not an
 * argv): callers build it with `quote()` from ./quote.ts so no inventory value can inject a command. The
 * script travels on the command's standard input, never in its argv (./carrier.ts).
 */
export interface Connection {
  /** Inventory name of the host. */
  readonly host: string;
  /** The login user (for deciding whether become needs sudo). */
  readonly user: string;
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

/** The connection could not be opened or was lost: the host is reported `unreachable`, never a crash. */
export class UnreachableError extends Error {
  readonly host: string;
  constructor(host: string, message: string) {
    super(message);
    this.name = 'UnreachableError';
    this.host = host;
  }
}

/** A host key did not match known_hosts, or was unknown without --accept-new-host-keys. */
export class HostKeyError extends UnreachableError {
  constructor(host: string, message: string) {
    super(host, message);
    this.name = 'HostKeyError';
  }
}

/** How to reach one host, after inventory variables are layered. */
export interface ConnectionSpec {
  /** Inventory name. */
  name: string;
  /** 'ssh' (default) or 'local' (run on this machine, no SSH). */
  connection: 'ssh' | 'local';
  address: string;
  port: number;
  user: string;
  privateKeyPath?: string;
  password?: string;
  /** Jump hosts, outermost first (ProxyJump a,b means connect to a, then b through a, then the host). */
  jump: JumpSpec[];
  /**
   * Ansible's `timeout` (ansible_timeout), as OpenSSH's ConnectTimeout: the TCP connect (or a jump host's
   * channel) within it, then the server's banner within it, at every hop.
   */
  connectTimeoutMs: number;
  /**
   * Further attempts after a connect fails for a reason that may pass (a timeout, a refused or reset
   * connection), not a host key or authentication failure: Ansible's `reconnection_retries` (ansible_ssh_retries,
   * ANSIBLE_SSH_RETRIES, `retries` under [ssh_connection]); 0 (Ansible's default) when unset.
   */
  connectRetries?: number;
  /** The key exchange and user authentication after the banner; default AUTH_TIMEOUT_MS (ssh.ts). Tests only. */
  authTimeoutMs?: number;
  /** known_hosts file to check host keys against. */
  knownHostsPath: string;
  /** Trust on first use: record unknown keys instead of refusing (mismatches are still refused). */
  acceptNewHostKeys: boolean;
  /** Become (sudo) by default for this host's tasks. */
  become: boolean;
  becomeUser: string;
}

export interface JumpSpec {
  address: string;
  port: number;
  user: string;
  privateKeyPath?: string;
}
