/**
 * The types of the validated, frozen configuration, all derived from its schema
 * (src/config-schema.ts). Keys are the camelCase form of the YAML's snake_case keys; durations are
 * milliseconds.
 */
export type {
  ApprovalPolicy,
  ClientEntry,
  Config,
  LimitsConfig,
  MailAddress,
  MailTransport,
  Platform,
  ProvisionerType,
  RegistrationMode,
} from './config-schema';
