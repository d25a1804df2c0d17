// A minimal QMP (QEMU Machine Protocol) client over a unix socket: one command at a
// time, asynchronous events skipped.
import { connect, type Socket } from 'node:net';

export class QmpClient {
  private buf = '';
  private waiting: ((msg: any) => void)[] = [];
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let i = this.buf.indexOf('\n');
      while (i >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (line) {
          const msg = JSON.parse(line);
          if (!msg.event) this.waiting.shift()?.(msg);
        }
        i = this.buf.indexOf('\n');
      }
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiting.splice(0))
        w({ error: { class: 'Closed', desc: 'QMP connection closed' } });
    });
  }

  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const sock = connect(path);
    const client = new QmpClient(sock);
    const greeting = client.next(timeoutMs);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    await greeting;
    await client.execute('qmp_capabilities', undefined, timeoutMs);
    return client;
  }

  private next(timeoutMs: number): Promise<any> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('QMP did not answer in time')), timeoutMs);
      this.waiting.push((msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
  }

  async execute(command: string, args?: object, timeoutMs = 5000): Promise<any> {
    if (this.closed) throw new Error('QMP connection closed');
    const reply = this.next(timeoutMs);
    this.sock.write(
      `${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`,
    );
    const msg = await reply;
    if (msg.error) throw new Error(`QMP ${command}: ${msg.error.desc}`);
    return msg.return;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Runs one command on a QMP socket and disconnects. */
export async function qmp(path: string, command: string, args?: object): Promise<any> {
  const c = await QmpClient.connect(path);
  try {
    return await c.execute(command, args);
  } finally {
    c.close();
  }
}
