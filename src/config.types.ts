/**
 * The validated, frozen configuration. Keys are the camelCase form of the YAML's snake_case keys
 * (see config/xmpp-invites.example.yaml). Durations are milliseconds.
 */

import type { LimitSettings } from './domain/limits';

export type ApprovalPolicy = 'none' | 'non-admins' | 'all';
export type RegistrationMode = 'invite-only' | 'open';
export type ProvisionerType = 'xep-0133' | 'ejabberd-api' | 'prosody-bridge';
export type Platform = 'android' | 'ios' | 'linux' | 'macos' | 'windows' | 'web';

export interface ClientEntry {
  name: string;
  platforms: Platform[];
  url: string;
}

export interface MailAddress {
  name?: string;
  address: string;
}

export type MailTransport =
  | { kind: 'file'; dir: string }
  | {
      kind: 'smtp';
      host: string;
      port: number;
      /** smtps:// (implicit TLS) */
      secure: boolean;
      /** STARTTLS required: credentials are set and `?tls=none` is absent */
      requireTls: boolean;
      /** `?tls=none`: no TLS at all */
      tlsNone: boolean;
      auth?: { user: string; pass: string };
    };

/** The `limits:` section; its rules live in src/domain/limits.ts. */
export type LimitsConfig = LimitSettings;

export interface Config {
  /** standby: when the server refuses the component with `conflict`, wait and take over (Prosody) */
  component: { server: string; domain: string; secret: string; standby: boolean };
  host: string;
  /** normalised (lower-cased) bare JIDs */
  admins: string[];
  /** absolute path; relative paths in the file are resolved against the config file's directory */
  database: string;
  siteName: string;
  tokenKey: string;
  invites: {
    expiry: number;
    allowUserInvites: boolean;
    approval: ApprovalPolicy;
    maxUses: number;
  };
  registration: {
    mode: RegistrationMode;
    requesterDomains: string[];
    serverBridge: boolean;
    minPasswordLength: number;
    provisioner: { type: ProvisionerType; url?: string };
  };
  presence: { maxInvitees: number; maxMessageLength: number };
  mail: {
    from?: MailAddress;
    transport: MailTransport;
    maxAttempts: number;
    /** null = off */
    reminderBefore: number | null;
  };
  web: {
    listen: { host: string; port: number };
    /** without a trailing slash */
    publicUrl: string;
    trustedProxies: string[];
    clients: ClientEntry[];
  };
  limits: LimitsConfig;
}
