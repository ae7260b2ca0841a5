/**
 * Labels and properties shaped like smtp(8)'s (spec §3.8): endpoints `service\naddress\nport\ntls\n`,
 * destinations `service\ndomain\n`, properties `name=value\n` lines.
 */
export const E = 'smtp\n192.0.2.1\n25\n0\n';
export const E2 = 'smtp\n192.0.2.2\n25\n0\n';
export const P = 'tls_level=0\nreuse_count=0\n';
export const P2 = 'tls_level=0\nreuse_count=1\n';
export const D = 'smtp\nexample.com\n';
export const Q = 'destination=example.com\n';
