/**
 * `danling serve <projectRoot> [--port N]`: the report page of every run under projectRoot,
 * served read-only on 127.0.0.1 with `node:http`; the page polls `/data.json` and redraws when a
 * run writes.
 */
import { createServer, type Server } from 'node:http';
import * as path from 'node:path';
import * as E from 'fp-ts/lib/Either.js';
import { intFlag, runCommand, usageError, type CommandDef, type CommandIo } from './args.js';
import { buildReportData, renderReport } from './report.js';
import { findRunDirs } from './runDirs.js';

export const SERVE: CommandDef = {
  name: 'serve',
  usage: 'danling serve <projectRoot> [--port N]',
  help: `Serves the report page (see danling report --help) of every run under projectRoot on
http://127.0.0.1:PORT/ (default 6060; 0 picks a free port), read-only. The page polls
/data.json every second and redraws when a run has written. Stop it with Ctrl-C.`,
  flags: { values: ['port'] },
};

/** Starts the server; resolves once it listens, with its URL. */
export const startServer = async (
  root: string,
  port: number,
): Promise<{ server: Server; url: string }> => {
  const data = async () => buildReportData(await findRunDirs(root), `danling: ${root}`);
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const send = (type: string, body: string): void => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const fail = (e: unknown): void => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
    };
    if (url === '/' || url.startsWith('/?'))
      data()
        .then((d) => renderReport(d, { live: '/data.json' }))
        .then((html) => {
          send('text/html; charset=utf-8', html);
        }, fail);
    else if (url === '/data.json')
      data().then((d) => {
        send('application/json', JSON.stringify(d));
      }, fail);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return { server, url: `http://127.0.0.1:${bound}/` };
};

export const serveCommand = (argv: readonly string[], io: CommandIo): Promise<number> =>
  runCommand(SERVE, argv, io, async ({ positional, flags }) => {
    if (positional.length !== 1) return usageError(SERVE, io, 'expected one projectRoot');
    const port = typeof flags['port'] === 'string' ? intFlag('port', flags['port']) : E.right(6060);
    if (E.isLeft(port) || port.right > 65535)
      return usageError(SERVE, io, E.isLeft(port) ? port.left : '--port: at most 65535');
    const root = path.resolve(io.cwd ?? process.cwd(), positional[0] as string);
    let started: Awaited<ReturnType<typeof startServer>>;
    try {
      started = await startServer(root, port.right);
    } catch (cause) {
      io.err(`danling serve: cannot listen on 127.0.0.1:${port.right}: ${String(cause)}\n`);
      return 1;
    }
    io.out(`serving ${root} on ${started.url} (read-only; Ctrl-C stops)\n`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        started.server.close(() => {
          resolve();
        });
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  });
