export {
  ConfigSchema,
  type FairlaneConfig,
  type TargetConfig,
  type WorkspaceConfig,
  type KeyConfig,
  type LimitsConfig,
  type RateConfig,
  type RouteConfig,
  type JwtConfig,
  type CustomerConfig,
  type JobsConfig,
} from './schema.ts'
export { ConfigError, formatPath, type ConfigIssue } from './config-error.ts'
export { resolveReferences, type Env } from './env-references.ts'
export { validateConfig, type ValidationResult } from './validate.ts'
export { loadConfigFile, configFromValue } from './load.ts'
export { FileConfigStore, type ConfigStore } from './config-store.ts'
export { rateSpec, type RateSpec } from './rates.ts'
export { configJsonSchemaText, optionalDefaults } from './json-schema.ts'
