/**
 * glibc's strerror() texts for the errors opening or reading main.cf can produce, so
 * that `open <path>: %m` reads exactly as Postfix prints it. Node reports libuv's
 * lower-case texts, which differ in wording for several codes.
 *
 * Codes missing from the table fall back to libuv's text with a capital first letter,
 * which matches glibc for most of the remaining codes.
 *
 * Trusts: Node's `code` field and "CODE: text, syscall ..." message format.
 */

const GLIBC_TEXTS: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  EROFS: 'Read-only file system',
  ENAMETOOLONG: 'File name too long',
  ELOOP: 'Too many levels of symbolic links',
  EOVERFLOW: 'Value too large for defined data type',
  ESTALE: 'Stale file handle',
  EDEADLK: 'Resource deadlock avoided',
  ENOLCK: 'No locks available',
};

export function strerror(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && Object.hasOwn(GLIBC_TEXTS, code)) return GLIBC_TEXTS[code] as string;
  const message = String((error as Error | undefined)?.message ?? error);
  const libuvText = /^[A-Z0-9_]+: ([^,]*)/.exec(message)?.[1] ?? message;
  return libuvText.charAt(0).toUpperCase() + libuvText.slice(1);
}
