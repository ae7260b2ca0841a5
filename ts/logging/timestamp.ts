// Record time stamps in local time, with C-locale month names as Postfix and glibc print them.
// The two formats differ only in the day: glibc's syslog() space-pads it ("%h %e %T"), Postfix's
// postlog client zero-pads it ("%b %d %H:%M:%S").
//
// Trusts: the Date it is given; the time zone is the process's (TZ), as for localtime(3).

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function twoDigits(n: number): string {
  return String(n).padStart(2, '0');
}

function clock(date: Date): string {
  return `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}:${twoDigits(date.getSeconds())}`;
}

/** `Dec  4 19:37:30`: glibc syslog()'s time stamp. */
export function syslogTimestamp(date: Date): string {
  return `${MONTHS[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ${clock(date)}`;
}

/** `Dec 04 19:37:30`: Postfix's postlog client's time stamp. */
export function postlogTimestamp(date: Date): string {
  return `${MONTHS[date.getMonth()]} ${twoDigits(date.getDate())} ${clock(date)}`;
}
