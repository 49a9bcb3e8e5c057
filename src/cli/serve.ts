import './runtime-tuning.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../observe/logger.js';
import { startServer } from '../server.js';
import { checkNamedFiles } from '../files/named-files.js';
import { OperatorError } from '../observe/operator-error.js';
import { selfCommand } from './self-command.js';

export async function runServe(configFile: string): Promise<number> {
  const { config, file, envApplied, warnings } = loadConfig(configFile);
  const logger = createLogger(config.log.level);
  logger.info({ config: file, envOverrides: envApplied }, 'configuration loaded');
  for (const warning of warnings) logger.warn(`configuration: ${warning}`);
  const command = selfCommand();
  // Warnings about these files are logged by the parts that read them, as they go on reading them.
  const errors = (await checkNamedFiles(config, { selfCommand: command })).filter((f) => f.severity === 'error');
  if (errors.length) throw new OperatorError(errors.map((e) => e.message));
  const server = await startServer(config, logger, { selfCommand: command });
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        logger.warn({ signal }, 'stopping now: a second signal cuts what is still running');
        void server.close();
        return;
      }
      stopping = true;
      logger.info({ signal, drainSeconds: config.drainSeconds }, `stopping: no new connections; pushes under way may finish for up to ${config.drainSeconds} s (drainSeconds)`);
      server.close().then(
        () => {
          logger.info('stopped');
          logger.flush();
          resolve(0);
        },
        (err: Error) => {
          logger.error({ err: { message: err.message } }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGHUP', () => {
      server.reopenLogs();
      let next;
      try {
        next = loadConfig(configFile);
      } catch (err) {
        const reason = err instanceof ConfigError ? `${err.source}: ${err.problems.join('; ')}` : (err as Error).message;
        logger.error({ signal: 'SIGHUP' }, `configuration not reloaded, the running one stays: ${reason}`);
        return;
      }
      for (const warning of next.warnings) logger.warn(`configuration: ${warning}`);
      server.reload(next.config).then(
        (plan) => {
          const applied = plan.apply.length ? plan.apply.join(', ') : 'nothing changed';
          logger.info({ signal: 'SIGHUP', applied: plan.apply }, `configuration reloaded (${applied}); htpasswd, htgroup and certificate files read again`);
          if (plan.atNextStart.length) {
            logger.warn({ keys: plan.atNextStart }, `configuration: ${plan.atNextStart.join(', ')} changed; that takes effect at the next start, the running value stays`);
          }
        },
        (err: Error) => logger.error({ signal: 'SIGHUP' }, `configuration reload failed, the running one stays: ${err.message}`),
      );
    });
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
