/**
 * The parameter table: every parameter a Postfix 3.7 scache(8) process reads, with the
 * Debian 3.7.11 built-in default, its type and its bounds, grouped and ordered exactly
 * as the program reads them.
 *
 * Order matters because Postfix materialises a default in the dictionary only when it
 * reads the parameter: a value referring to `$daemon_directory` expands to nothing if it
 * is read before daemon_directory is (syslog_name is), unless main.cf or -o set it.
 * Hence the groups below mirror the tables of mail_params_init()
 * (postfix/src/global/mail_params.c) and then scache's own table (scache.c).
 *
 * How each kind is stored when unset (this is what later `$name` references see):
 *   string: the EXPANDED default;  int/long/bool: the formatted value;
 *   time/nbool: the RAW default (expanded again on every reference).
 *
 * Defaults were taken from `postconf -d` of Debian's postfix 3.7.11-0+deb12u1 and
 * mail_params.h at v3.7.11. Bounds of 0 mean "none", as in Postfix.
 *
 * Trusts: nothing; this is data.
 */

export interface StringParameter {
  readonly kind: 'string';
  readonly name: string;
  readonly defaultValue: string;
  readonly minLength: number;
  readonly maxLength: number;
}

/** A string whose default is computed at run time (from the host name). */
export interface ComputedStringParameter {
  readonly kind: 'computed-string';
  readonly name: 'myhostname' | 'mydomain';
  readonly minLength: number;
  readonly maxLength: number;
}

export interface IntegerParameter {
  readonly kind: 'int' | 'long';
  readonly name: string;
  readonly defaultValue: number;
  readonly min: number;
  readonly max: number;
}

export interface BoolParameter {
  readonly kind: 'bool';
  readonly name: string;
  readonly defaultValue: boolean;
}

/** A boolean whose default is an expression (evaluated, e.g., against compatibility_level). */
export interface ExpressionBoolParameter {
  readonly kind: 'nbool';
  readonly name: string;
  readonly defaultValue: string;
}

/** A time value in seconds; the default unit is the first letter of the default value. */
export interface TimeParameter {
  readonly kind: 'time';
  readonly name: string;
  readonly defaultValue: string;
  readonly min: number;
  readonly max: number;
}

export type ParameterSpec =
  | StringParameter
  | ComputedStringParameter
  | IntegerParameter
  | BoolParameter
  | ExpressionBoolParameter
  | TimeParameter;

const str = (name: string, defaultValue: string, minLength = 0, maxLength = 0): StringParameter => ({
  kind: 'string', name, defaultValue, minLength, maxLength,
});
const int = (name: string, defaultValue: number, min = 0, max = 0): IntegerParameter => ({
  kind: 'int', name, defaultValue, min, max,
});
const long = (name: string, defaultValue: number, min = 0, max = 0): IntegerParameter => ({
  kind: 'long', name, defaultValue, min, max,
});
const bool = (name: string, defaultValue: boolean): BoolParameter => ({ kind: 'bool', name, defaultValue });
const nbool = (name: string, defaultValue: string): ExpressionBoolParameter => ({ kind: 'nbool', name, defaultValue });
const time = (name: string, defaultValue: string, min = 0, max = 0): TimeParameter => ({
  kind: 'time', name, defaultValue, min, max,
});

/** Read first, so that the "level" comparisons in later defaults know the level. */
export const COMPATIBILITY_LEVEL = str('compatibility_level', '0');

/** mail_params_init() first_str_defaults; syslog_facility is validated right after. */
export const FIRST_STRINGS: readonly StringParameter[] = [
  str('mail_version', '3.7.11', 1),
  str('syslog_facility', 'mail', 1),
  str('inet_protocols', 'all'),
  str('multi_instance_directories', ''),
  str('multi_instance_group', ''),
  str('multi_instance_name', ''),
  str('maillog_file', ''),
  str('maillog_file_prefixes', '/var, /dev/stdout', 1),
  str('maillog_file_compressor', 'gzip', 1),
  str('maillog_file_rotate_suffix', '%Y%m%d-%H%M%S', 1),
  str('postlog_service_name', 'postlog', 1),
  str('dnssec_probe', 'ns:.'),
  str('known_tcp_ports', 'lmtp=24, smtp=25, smtps=submissions=465, submission=587'),
];

export const FIRST_BOOLS: readonly BoolParameter[] = [
  bool('daemon_table_open_error_is_fatal', false),
  bool('dns_ncache_ttl_fix_enable', false),
];

export const FIRST_EXPRESSION_BOOLS: readonly ExpressionBoolParameter[] = [
  nbool('smtputf8_enable', '${{$compatibility_level} <level {1} ? {no} : {yes}}'),
  nbool('enable_idna2003_compatibility', 'no'),
  nbool('respectful_logging', '${{$compatibility_level} <level {3.6} ? {no} : {yes}}'),
];

/** Defaults derived from the host name (get_hostname, check_myhostname, check_mydomainname). */
export const MYHOSTNAME: ComputedStringParameter = { kind: 'computed-string', name: 'myhostname', minLength: 1, maxLength: 0 };
export const MYDOMAIN: ComputedStringParameter = { kind: 'computed-string', name: 'mydomain', minLength: 1, maxLength: 0 };

export const OTHER_STRINGS: readonly StringParameter[] = [
  str('mail_name', 'Postfix', 1),
  str('syslog_name', '${multi_instance_name?{$multi_instance_name}:{postfix}}', 1),
  str('mail_owner', 'postfix', 1),
  str('setgid_group', 'postdrop', 1),
  str('mydestination', '$myhostname, localhost.$mydomain, localhost'),
  str('myorigin', '$myhostname', 1),
  str('relayhost', ''),
  str('daemon_directory', '/usr/lib/postfix/sbin', 1),
  str('data_directory', '/var/lib/postfix', 1),
  str('command_directory', '/usr/sbin', 1),
  str('meta_directory', '/etc/postfix', 1),
  str('queue_directory', '/var/spool/postfix', 1),
  str('shlib_directory', '/usr/lib/postfix', 1),
  str('process_id_directory', 'pid', 1),
  str('inet_interfaces', 'all'),
  str('proxy_interfaces', ''),
  str('double_bounce_sender', 'double-bounce', 1),
  str('default_privs', 'nobody', 1),
  str('alias_database', 'hash:/etc/aliases'),
  str('mail_release_date', '20240304', 1),
  str('default_database_type', 'hash', 1),
  str('hash_queue_names', 'deferred, defer', 1),
  str('recipient_delimiter', ''),
  str('relay_domains', '${{$compatibility_level} <level {2} ? {$mydestination} : {}}'),
  str('fast_flush_domains', '$relay_domains'),
  str('export_environment', 'TZ MAIL_CONFIG LANG'),
  str(
    'import_environment',
    'MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME',
  ),
  str('mynetworks_style', '${{$compatibility_level} <level {2} ? {subnet} : {host}}', 1),
  str('debug_peer_list', ''),
  str('default_verp_delimiters', '+=', 2, 2),
  str('verp_delimiter_filter', '-=+', 1),
  str(
    'parent_domain_matches_subdomains',
    'debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps',
  ),
  str('alternate_config_directories', ''),
  str('bounce_service_name', 'bounce', 1),
  str('cleanup_service_name', 'cleanup', 1),
  str('defer_service_name', 'defer', 1),
  str('pickup_service_name', 'pickup', 1),
  str('queue_service_name', 'qmgr', 1),
  str('rewrite_service_name', 'rewrite', 1),
  str('showq_service_name', 'showq', 1),
  str('error_service_name', 'error', 1),
  str('flush_service_name', 'flush', 1),
  str('address_verify_service_name', 'verify', 1),
  str('trace_service_name', 'trace', 1),
  str('proxymap_service_name', 'proxymap', 1),
  str('proxywrite_service_name', 'proxywrite', 1),
  str('internal_mail_filter_classes', ''),
  str('multi_instance_wrapper', ''),
  str('default_delivery_status_filter', ''),
  str('smtputf8_autodetect_classes', 'sendmail, verify', 1),
  str('message_drop_headers', 'bcc, content-length, resent-bcc, return-path'),
  str('info_log_address_format', 'external', 1),
];

export const INTS: readonly IntegerParameter[] = [
  int('default_process_limit', 100, 1),
  int('max_use', 100, 1),
  int('dont_remove', 0),
  int('line_length_limit', 2048, 512),
  int('hash_queue_depth', 1, 1),
  int('fork_attempts', 5, 1),
  int('deliver_lock_attempts', 20, 1),
  int('debug_peer_level', 2, 1),
  int('fault_injection_code', 0),
  int('berkeley_db_create_buffer_size', 16777216, 1),
  int('berkeley_db_read_buffer_size', 131072, 1),
  int('header_size_limit', 102400, 1),
  int('header_address_token_limit', 10240, 1),
  int('mime_nesting_limit', 100, 1),
  int('mime_boundary_length_limit', 2048, 1),
  int('delay_logging_resolution_limit', 2, 0, 6),
  int('tcp_windowsize', 0),
];

export const LONGS: readonly IntegerParameter[] = [
  long('message_size_limit', 10240000),
  long('lmdb_map_size', 16777216, 1),
];

export const BOOLS: readonly BoolParameter[] = [
  bool('disable_dns_lookups', false),
  bool('soft_bounce', false),
  bool('owner_request_special', true),
  bool('strict_8bitmime', false),
  bool('strict_7bit_headers', false),
  bool('strict_8bitmime_body', false),
  bool('strict_mime_encoding_domain', false),
  bool('disable_mime_input_processing', false),
  bool('disable_mime_output_conversion', false),
  bool('address_verify_negative_cache', true),
  bool('backwards_bounce_logfile_compatibility', true),
  bool('helpful_warnings', true),
  bool('send_cyrus_sasl_authzid', false),
  bool('multi_instance_enable', false),
  bool('enable_long_queue_ids', false),
  bool('strict_smtputf8', false),
  bool('enable_original_recipient', true),
];

export const TIMES: readonly TimeParameter[] = [
  time('application_event_drain_time', '100s', 1),
  time('max_idle', '100s', 1),
  time('ipc_timeout', '3600s', 1),
  time('ipc_idle', '5s', 1),
  time('ipc_ttl', '1000s', 1),
  time('trigger_timeout', '10s', 1),
  time('fork_delay', '1s', 1),
  time('deliver_lock_delay', '1s', 1),
  time('stale_lock_time', '500s', 1),
  time('daemon_timeout', '18000s', 1),
  time('in_flow_delay', '1s', 0, 10),
];

/** scache(8)'s own table, read after the framework has initialised logging. */
export const SCACHE_TIMES: readonly TimeParameter[] = [
  time('connection_cache_ttl_limit', '2s', 1),
  time('connection_cache_status_update_time', '600s', 1),
];

/**
 * postfix-scache's own parameters, not Postfix's: read after scache's table (postfix-scache-params.ts),
 * from main.cf or `-o`, with Postfix's syntax, bounds and fatal texts. They are not part of
 * READ_ORDER, which is the stock program's. Postfix programs never read them (`postconf -n` lists
 * them; `postconf` itself warns that they are unused, which is harmless).
 */
export const POSTFIX_SCACHE_INTS: readonly IntegerParameter[] = [
  /** 0: derived from RLIMIT_NOFILE (the descriptors left after a reserve for clients). */
  int('postfix_scache_connection_limit', 0),
  /** 0: the global limit. */
  int('postfix_scache_endpoint_connection_limit', 0),
  /** Bytes; a longer attribute name or value closes the client's connection with a warning. */
  int('postfix_scache_max_attribute_length', 65536, 1024, 16777216),
];

export const POSTFIX_SCACHE_BOOLS: readonly BoolParameter[] = [bool('postfix_scache_evict_dead_peers', true)];

/** Read by master(8), never by scache: listed for completeness, not read by loadConfig. */
export const MASTER_ONLY: readonly TimeParameter[] = [time('service_throttle_time', '60s', 1)];

/**
 * Values the program itself puts into the dictionary. In 3.7:
 * - process_name: set before main.cf is read, so main.cf and -o can replace the
 *   dictionary entry (main.cf with an "overriding earlier entry" warning); that changes
 *   `$process_name` expansions but not the program's own name (log tag).
 * - config_directory: same timing and effect; the directory actually used stays.
 * - service_name: set after -o processing from -n or argv[0]: cannot be overridden.
 * - process_id: set at the end of the framework's parameter reading: cannot be
 *   overridden for anything read later (earlier reads see a main.cf/-o value, if any).
 */
export const BUILTIN_PARAMETERS = {
  process_name: { overridable: true, setWhen: 'before main.cf' },
  config_directory: { overridable: true, setWhen: 'before main.cf' },
  service_name: { overridable: false, setWhen: 'after -o options' },
  process_id: { overridable: false, setWhen: 'after framework parameters' },
} as const;

/** Every parameter in the read order, framework first, then scache's. */
export const READ_ORDER: readonly ParameterSpec[] = [
  COMPATIBILITY_LEVEL,
  ...FIRST_STRINGS,
  ...FIRST_BOOLS,
  ...FIRST_EXPRESSION_BOOLS,
  MYHOSTNAME,
  MYDOMAIN,
  ...OTHER_STRINGS,
  ...INTS,
  ...LONGS,
  ...BOOLS,
  ...TIMES,
  ...SCACHE_TIMES,
];

const BY_NAME: ReadonlyMap<string, ParameterSpec> = new Map(
  [...READ_ORDER, ...MASTER_ONLY, ...POSTFIX_SCACHE_INTS, ...POSTFIX_SCACHE_BOOLS].map((spec) => [spec.name, spec]),
);

/** The table entry for a parameter, or undefined for names this program does not read. */
export function parameterSpec(name: string): ParameterSpec | undefined {
  return BY_NAME.get(name);
}
