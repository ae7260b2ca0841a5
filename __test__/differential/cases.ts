/**
 * The differential cases: spec §15 checklist items 1–32 and 57–60 (named with their numbers), and
 * further edge cases from §11 and §14 (named after the section). Where Postfix and we differ on
 * purpose, the case runs per-side steps (`sides`) and says why.
 */
import {
  BAD,
  DUMMY,
  FAIL,
  OK,
  attrs,
  concat,
  findDest,
  findDestReply,
  findEndp,
  findEndpReply,
  saveDest,
  saveEndp,
  status,
} from '../support/attrs.js';
import { foundDest, foundEndp, savedDest, savedEndp, type Case, type Step } from './script.js';
import { E, E2, P, P2, D, Q } from '../support/labels.js';

// Labels and properties shaped like smtp(8)'s (spec §3.8).
const P3 = 'tls_level=0\nreuse_count=2\n';
const Q2 = 'destination=example.com\nhost_name=mx2\n';
const Q3 = 'destination=example.com\nhost_name=mx3\n';

const BAD_SAVE_ENDP = 'warning: scache_save_endp_service: bad or missing request parameter';
const BAD_FIND_ENDP = 'warning: scache_find_endp_service: bad or missing request parameter';
const BAD_SAVE_DEST = 'warning: scache_save_dest_service: bad or missing request parameter';
const BAD_FIND_DEST = 'warning: scache_find_dest_service: bad or missing request parameter';
const CANNOT_RECEIVE = { prefix: 'warning: scache_save_endp_service: unable to receive file descriptor: ' };
const CANNOT_SEND_ENDP = { prefix: 'warning: scache_find_endp_service: cannot send file descriptor: ' };
const CANNOT_SEND_DEST = { prefix: 'warning: scache_find_dest_service: cannot send file descriptor: ' };
const malformed = (value: string) =>
  `warning: malformed numerical data from scache socket while reading input attribute value: ${value}`;
const missing = (name: string) => `warning: missing attribute ${name} in input from scache socket`;
const unexpected = (name: string, expecting: string) =>
  `warning: unexpected attribute ${name} from scache socket (expecting: ${expecting})`;

const missEndp: Step[] = [{ send: findEndp(E) }, { expect: findEndpReply(FAIL) }];
const missEndpOn = (on: string, label = E): Step[] => [{ send: findEndp(label), on }, { expect: findEndpReply(FAIL), on }];
const missDest = (label = D, on = 'c'): Step[] => [{ send: findDest(label), on }, { expect: findDestReply(FAIL), on }];

/** save_endp whose ttl is rejected: status=1 at once (no dummy), nothing stored, connection usable. */
function rejectedTtl(ttl: string, records: string[]): Case {
  return {
    name: `5 save_endp with ttl ${JSON.stringify(ttl)} gets status=1, no dummy, and a warning`,
    steps: [
      { send: saveEndp(ttl, E, P) },
      { expect: status(BAD) },
      { expectNothing: 150 },
      ...missEndp,
      { records },
    ],
  };
}

function acceptedTtl(name: string, ttl: string): Case {
  return {
    name,
    steps: [...savedEndp(E, P, 'a', { ttl }), ...foundEndp(E, P, 'x'), { sameOpenFile: 'x', as: 'a' }, { records: [] }],
  };
}

/**
 * save_dest with an unusual ttl: `stored` (status=0, and the binding answers find_dest), `accepted`
 * (status=0 only: a ttl of 1 s may end at the very next second boundary in Postfix, too soon to look
 * it up reliably), or `rejected` (status=1, no binding).
 */
function saveDestTtl(name: string, ttl: string, outcome: 'stored' | 'accepted' | 'rejected', records: string[] = []): Case {
  const steps: Record<typeof outcome, Step[]> = {
    stored: [...savedDest(D, Q, E, ttl), ...savedEndp(E, P, 'a'), ...foundDest(D, Q, P, 'x'), { sameOpenFile: 'x', as: 'a' }],
    accepted: [...savedDest(D, Q, E, ttl)],
    rejected: [{ send: saveDest(ttl, D, Q, E) }, { expect: status(BAD) }, ...savedEndp(E, P, 'a'), ...missDest()],
  };
  return { name, steps: [...steps[outcome], { records }] };
}

export const cases: Case[] = [
  {
    name: '1 a client receives exactly the 36-byte announcement before sending anything',
    steps: [{ expectNothing: 200 }],
  },
  {
    name: '2 request=foo gets exactly status=1 and an "unrecognized request" warning',
    steps: [{ send: attrs(['request', 'foo']) }, { expect: status(BAD) }, { records: ['warning: unrecognized request: "foo", ignored'] }],
  },
  {
    name: '3 save_endp with a valid ttl gets exactly dummy and nothing else until a descriptor arrives',
    steps: [
      { send: saveEndp(2, E, P) },
      { expect: DUMMY },
      { expectNothing: 300 },
      { sendFd: 'a' },
      { expect: status(OK) },
      { records: [] },
    ],
  },
  {
    name: '4 after one 0x00 byte with one SCM_RIGHTS descriptor the reply is exactly status=0',
    steps: [
      { send: saveEndp(2, E, P) },
      { expect: DUMMY },
      { sendFd: 'a', data: Buffer.of(0) },
      { expect: status(OK) },
      { expectNothing: 100 },
      ...foundEndp(E, P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  rejectedTtl('0', [BAD_SAVE_ENDP]),
  rejectedTtl('-5', [BAD_SAVE_ENDP]),
  rejectedTtl('abc', [malformed('abc'), BAD_SAVE_ENDP]),
  rejectedTtl('5 ', [malformed('5 '), BAD_SAVE_ENDP]),
  rejectedTtl('', [malformed(''), BAD_SAVE_ENDP]),
  {
    name: '5 save_endp without property gets status=1 and "missing attribute property"',
    steps: [
      { send: attrs(['request', 'save_endp'], ['ttl', '2'], ['label', E]) },
      { expect: status(BAD) },
      { expectNothing: 150 },
      ...missEndp,
      { records: [missing('property'), BAD_SAVE_ENDP] },
    ],
  },
  {
    name: '5 save_endp without ttl gets status=1; the rest of the list is skipped',
    steps: [
      { send: attrs(['request', 'save_endp'], ['label', E], ['property', P]) },
      { expect: status(BAD) },
      { expectNothing: 150 },
      ...missEndp,
      { records: [unexpected('label', 'ttl'), BAD_SAVE_ENDP] },
    ],
  },
  acceptedTtl('6 save_endp with ttl " 5" is accepted', ' 5'),
  acceptedTtl('6 save_endp with ttl "+5" is accepted', '+5'),
  {
    name: '7 save_endp answered with a byte without descriptor gets status=2 and "unable to receive"',
    steps: [
      { send: saveEndp(2, E, P) },
      { expect: DUMMY },
      { send: Buffer.of(0) },
      { expect: status(FAIL) },
      ...missEndp,
      { records: [CANNOT_RECEIVE] },
    ],
  },
  {
    name: '7 save_endp whose client closes instead of sending the descriptor logs "unable to receive"',
    steps: [
      { send: saveEndp(2, E, P) },
      { expect: DUMMY },
      { close: 'c' },
      { records: [CANNOT_RECEIVE] },
      { connect: 'c2' },
      ...missEndpOn('c2'),
    ],
  },
  {
    name: '8 find_endp of an unknown label gets exactly the 20-byte miss reply',
    steps: [{ send: findEndp(E) }, { expect: Buffer.from('status\x002\x00property\x00\x00\x00', 'latin1') }],
  },
  {
    name: '9 find_dest of an unknown label gets exactly the 30-byte miss reply',
    steps: [{ send: findDest(D) }, { expect: Buffer.from('status\x002\x00property\x00\x00property\x00\x00\x00', 'latin1') }],
  },
  {
    name: '10 find_endp without label gets status=1 property= and "bad or missing request parameter"',
    steps: [
      { send: attrs(['request', 'find_endp']) },
      { expect: findEndpReply(BAD) },
      { records: [missing('label'), BAD_FIND_ENDP] },
    ],
  },
  {
    name: '11 find_dest without label gets status=1 property= property=',
    steps: [
      { send: attrs(['request', 'find_dest']) },
      { expect: findDestReply(BAD) },
      { records: [missing('label'), BAD_FIND_DEST] },
    ],
  },
  {
    name: '12 a find_endp hit: reply, wait for dummy, one byte + one descriptor, trailing dummy read',
    steps: [
      ...savedEndp(E, P, 'a'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { expectNothing: 300 },
      { send: DUMMY },
      { receiveFd: 'x' },
      { expectNothing: 100 },
      { send: DUMMY },
      { expectNothing: 100 },
      ...missEndp,
      { records: [] },
    ],
  },
  {
    name: '12 a find_dest hit goes through the same dummy / descriptor / dummy sequence',
    steps: [
      ...savedDest(D, Q, E),
      ...savedEndp(E, P, 'a'),
      { send: findDest(D) },
      { expect: findDestReply(OK, Q, P) },
      { expectNothing: 300 },
      { send: DUMMY },
      { receiveFd: 'x' },
      { expectNothing: 100 },
      { send: DUMMY },
      ...missDest(),
      { records: [] },
    ],
  },
  {
    name: '13 the received descriptor is the same open file as the saved one',
    steps: [...savedEndp(E, P, 'a', { keep: true }), ...foundEndp(E, P, 'x'), { sameOpenFile: 'x', as: 'a' }],
  },
  {
    name: '14 two connections saved under one endpoint come back oldest first',
    steps: [
      ...savedEndp(E, P, 'a'),
      ...savedEndp(E, P2, 'b'),
      ...foundEndp(E, P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
      ...foundEndp(E, P2, 'y'),
      { sameOpenFile: 'y', as: 'b' },
    ],
  },
  {
    name: '15 a returned connection is no longer in the cache',
    steps: [
      ...savedEndp(E, P, 'a'),
      ...foundEndp(E, P, 'x'),
      ...missEndp,
      { connect: 'c2' },
      ...missEndpOn('c2'),
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  {
    name: '16 saving the same endpoint and property twice stores two connections',
    steps: [
      ...savedEndp(E, P, 'a'),
      ...savedEndp(E, P, 'b'),
      ...foundEndp(E, P, 'x'),
      ...foundEndp(E, P, 'y'),
      ...missEndp,
      { sameOpenFile: 'x', as: 'a' },
      { sameOpenFile: 'y', as: 'b' },
    ],
  },
  {
    name: '17 a ttl above connection_cache_ttl_limit (2 s) is clamped: the peer sees EOF 1-3 s later',
    ttlLimit: 2,
    steps: [...savedEndp(E, P, 'a', { ttl: 100 }), { mark: 'saved' }, { peerEof: 'a', from: 1000, to: 3000, since: 'saved' }, ...missEndp],
  },
  {
    name: '18 a connection not looked up is closed ttl (2 s) ±1 s after it was saved',
    ttlLimit: 5,
    steps: [...savedEndp(E, P, 'a', { ttl: 2 }), { mark: 'saved' }, { peerEof: 'a', from: 1000, to: 3000, since: 'saved' }, ...missEndp],
  },
  {
    name: '19 save_dest replies status=0 although the endpoint has no connections',
    steps: [{ send: saveDest(2, D, Q, E) }, { expect: status(OK) }, ...missDest()],
  },
  {
    // The live example of spec §4.5: bindings D→(E1,p1), D→(E2,p2), refresh D→(E1,p1), D→(E1,p3);
    // sessions E2:c1, E1:c2, E1:c3.
    name: '20 find_dest returns a connection of the oldest binding that has one, with that binding\'s property',
    steps: [
      ...savedDest(D, Q, E),
      ...savedDest(D, Q2, E2),
      ...savedDest(D, Q, E),
      ...savedDest(D, Q3, E),
      ...savedEndp(E2, P2, 'c1'),
      ...savedEndp(E, P, 'c2'),
      ...savedEndp(E, P3, 'c3'),
      ...foundDest(D, Q, P, 'x'),
      { sameOpenFile: 'x', as: 'c2' },
      ...foundDest(D, Q, P3, 'y'),
      { sameOpenFile: 'y', as: 'c3' },
      ...foundDest(D, Q2, P2, 'z'),
      { sameOpenFile: 'z', as: 'c1' },
      ...missDest(),
    ],
  },
  {
    // A (Q,E) saved at 0 s and refreshed at 2.5 s lives to 5.5-6.5 s; unrefreshed it would be gone by
    // 4 s. B (Q2,E2) is saved at 2.5 s, after A. At 4.7 s A must still be there, and still first.
    name: '21 re-saving an identical binding refreshes its ttl and keeps its position',
    ttlLimit: 4,
    steps: [
      { mark: 't0' },
      ...savedDest(D, Q, E, 4),
      { sleepUntil: 2500, since: 't0' },
      ...savedDest(D, Q2, E2, 4),
      ...savedDest(D, Q, E, 4),
      { sleepUntil: 4700, since: 't0' },
      ...savedEndp(E2, P2, 'b', { ttl: 4 }),
      ...savedEndp(E, P, 'a', { ttl: 4 }),
      ...foundDest(D, Q, P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
      ...foundDest(D, Q2, P2, 'y'),
      { sameOpenFile: 'y', as: 'b' },
      ...missDest(),
    ],
  },
  {
    // (Q,E) with ttl 2 and (Q2,E) with ttl 5: right after, the first binding answers (a replacement
    // would answer Q2); once it expired (≤ 2 s), the second one still does.
    name: '22 the same destination and endpoint with a different property is a second binding',
    ttlLimit: 5,
    steps: [
      { mark: 't0' },
      ...savedDest(D, Q, E, 2),
      ...savedDest(D, Q2, E, 5),
      ...savedEndp(E, P, 'a', { ttl: 4 }),
      ...foundDest(D, Q, P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
      { sleepUntil: 2600, since: 't0' },
      ...savedEndp(E, P2, 'b', { ttl: 4 }),
      ...foundDest(D, Q2, P2, 'y'),
      { sameOpenFile: 'y', as: 'b' },
    ],
  },
  {
    name: '23 a binding survives the consumption and the expiry of its endpoint\'s connections',
    ttlLimit: 4,
    steps: [
      ...savedDest(D, Q, E, 4),
      ...savedEndp(E, P, 'a', { ttl: 2 }),
      ...foundDest(D, Q, P, 'x'),
      ...missDest(),
      ...savedEndp(E, P2, 'b', { ttl: 1 }),
      { mark: 'saved' },
      { peerEof: 'b', from: 0, to: 2000, since: 'saved' },
      ...missDest(),
      ...savedEndp(E, P3, 'c', { ttl: 2 }),
      ...foundDest(D, Q, P3, 'y'),
      { sameOpenFile: 'y', as: 'c' },
    ],
  },
  {
    // ttl 4: alive 1.5 s after the save, gone 5.3 s after it although its endpoint has a connection.
    name: '24 a binding expires ttl (4 s) ±1 s after its last save',
    ttlLimit: 4,
    steps: [
      { mark: 't0' },
      ...savedDest(D, Q, E, 4),
      { sleepUntil: 1500, since: 't0' },
      ...savedEndp(E, P, 'a', { ttl: 4 }),
      ...foundDest(D, Q, P, 'x'),
      { sleepUntil: 5300, since: 't0' },
      ...savedEndp(E, P2, 'b', { ttl: 4 }),
      ...missDest(),
      ...foundEndp(E, P2, 'y'),
      { sameOpenFile: 'y', as: 'b' },
    ],
  },
  {
    name: '25 destination and endpoint label spaces are independent',
    steps: [
      ...savedEndp('X', P, 'a'),
      ...missDest('X'),
      ...savedDest('X', Q, 'Y'),
      ...foundEndp('X', P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
      ...missDest('X'),
      ...savedEndp('Y', P2, 'b'),
      ...foundDest('X', Q, P2, 'y'),
      { sameOpenFile: 'y', as: 'b' },
      ...missEndpOn('c', 'Y'),
    ],
  },
  (() => {
    const label = 'smtp\n[2001:db8::1]\n25\n0 \xff\x80\xc3\xa9\x01 \n';
    const property = ' tls level = 0 \n\xfe\xff\x80\n\t\n\n';
    const dest = 'smtp\nex\xe4mple.com \x80\n';
    const destProperty = 'destination=\xc3\xa9x \xff\n\n';
    return {
      name: '26 labels and properties with \\n, spaces and bytes >= 0x80 round-trip unchanged',
      steps: [
        ...savedDest(dest, destProperty, label),
        ...savedEndp(label, property, 'a'),
        ...savedEndp(label, property, 'b'),
        ...missEndpOn('c', label.replace('\xff', '\xfe')),
        ...missDest(dest.replace('\x80', '\x81')),
        ...foundDest(dest, destProperty, property, 'x'),
        { sameOpenFile: 'x', as: 'a' },
        ...foundEndp(label, property, 'y'),
        { sameOpenFile: 'y', as: 'b' },
      ],
    };
  })(),
  {
    name: '27 several requests are served over one connection in sequence',
    steps: [
      ...missEndp,
      ...savedEndp(E, P, 'a'),
      ...missDest(),
      { send: attrs(['request', 'foo']) },
      { expect: status(BAD) },
      ...savedDest(D, Q, E),
      { send: attrs(['request', 'find_endp']) },
      { expect: findEndpReply(BAD) },
      ...savedEndp(E, P2, 'b'),
      ...foundDest(D, Q, P, 'x'),
      ...foundEndp(E, P2, 'y'),
      ...missEndp,
      ...missDest(),
      { sameOpenFile: 'x', as: 'a' },
      { sameOpenFile: 'y', as: 'b' },
      { records: ['warning: unrecognized request: "foo", ignored', missing('label'), BAD_FIND_ENDP] },
    ],
  },
  {
    name: '28 after a find hit, the trailing dummy and the next request in one write are both processed',
    steps: [
      ...savedEndp(E, P, 'a'),
      ...savedEndp(E, P2, 'b'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { send: DUMMY },
      { receiveFd: 'x' },
      { send: concat(DUMMY, findEndp(E)) },
      { expect: findEndpReply(OK, P2) },
      { send: concat(DUMMY) },
      { receiveFd: 'y' },
      { send: concat(DUMMY, findEndp(E)) },
      { expect: findEndpReply(FAIL) },
      { sameOpenFile: 'x', as: 'a' },
      { sameOpenFile: 'y', as: 'b' },
    ],
  },
  {
    name: '29 several clients are connected at once and all are served',
    steps: [
      { connect: 'c2' },
      { connect: 'c3' },
      ...savedEndp(E, P, 'a', { on: 'c2' }),
      ...missEndpOn('c', E2),
      ...foundEndp(E, P, 'x', 'c3'),
      ...savedEndp(E2, P2, 'b', { on: 'c' }),
      ...foundEndp(E2, P2, 'y', 'c2'),
      ...missEndpOn('c3'),
      { sameOpenFile: 'x', as: 'a' },
      { sameOpenFile: 'y', as: 'b' },
    ],
  },
  {
    name: '30 a client disconnect does not remove or close the connections it saved',
    steps: [
      ...savedEndp(E, P, 'a'),
      { close: 'c' },
      { peerOpen: 'a', forMs: 300 },
      { connect: 'c2' },
      ...foundEndp(E, P, 'x', 'c2'),
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  {
    name: '31 foo=bar as first attribute gets no reply and the three warnings of spec §2.3',
    steps: [
      { send: attrs(['foo', 'bar']) },
      { expectNothing: 400 },
      { records: [unexpected('foo', 'request'), unexpected('bar', 'request'), missing('request')] },
      ...missEndp,
    ],
  },
  {
    name: '32 an extra attribute after find_endp\'s label: "(list terminator)" warning, request served',
    steps: [
      ...savedEndp(E, P, 'a'),
      { send: attrs(['request', 'find_endp'], ['label', E], ['x', 'y']) },
      { expect: findEndpReply(OK, P) },
      { send: DUMMY },
      { receiveFd: 'x' },
      { send: DUMMY },
      ...missEndp,
      { sameOpenFile: 'x', as: 'a' },
      { records: [unexpected('x', '(list terminator)')] },
    ],
  },
  {
    name: '32 an extra attribute after save_endp\'s property: "(list terminator)" warning, request served',
    steps: [
      { send: attrs(['request', 'save_endp'], ['ttl', '2'], ['label', E], ['property', P], ['x', 'y']) },
      { expect: DUMMY },
      { sendFd: 'a' },
      { expect: status(OK) },
      ...foundEndp(E, P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
      { records: [unexpected('x', '(list terminator)')] },
    ],
  },
  {
    name: '32 an extra attribute after save_dest\'s endpoint label: "(list terminator)" warning, request served',
    steps: [
      { send: attrs(['request', 'save_dest'], ['ttl', '2'], ['label', D], ['property', Q], ['label', E], ['label', 'again']) },
      { expect: status(OK) },
      ...savedEndp(E, P, 'a'),
      ...foundDest(D, Q, P, 'x'),
      { records: [unexpected('label', '(list terminator)')] },
    ],
  },
  {
    name: '57 a client that closes after the find_endp reply without dummy: "cannot send", connection closed',
    steps: [
      ...savedEndp(E, P, 'a'),
      ...savedEndp(E2, P2, 'b'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { close: 'c' },
      { mark: 'closed' },
      { peerEof: 'a', from: 0, to: 1000, since: 'closed' },
      { records: [CANNOT_SEND_ENDP] },
      { connect: 'c2' },
      ...missEndpOn('c2'),
      { peerOpen: 'b', forMs: 100 },
    ],
  },
  {
    name: '57 a client that closes after the find_dest reply without dummy: "cannot send", connection closed',
    steps: [
      ...savedDest(D, Q, E),
      ...savedEndp(E, P, 'a'),
      { send: findDest(D) },
      { expect: findDestReply(OK, Q, P) },
      { close: 'c' },
      { mark: 'closed' },
      { peerEof: 'a', from: 0, to: 1000, since: 'closed' },
      { records: [CANNOT_SEND_DEST] },
      { connect: 'c2' },
      ...missDest(D, 'c2'),
    ],
  },
  {
    name: '58 save_endp with two descriptors in one message gets status=2 (Postfix leaks both, we close them: Q2)',
    steps: [
      { send: saveEndp(2, E, P) },
      { expect: DUMMY },
      { sendFd: ['a', 'b'] },
      { expect: status(FAIL) },
      { mark: 'replied' },
      { records: [CANNOT_RECEIVE] },
      ...missEndp,
      {
        why: 'spec Q2: Postfix never closes the descriptors it could not use; we close both at once',
        sides: {
          postfix: [
            { peerOpen: 'a', forMs: 500 },
            { peerOpen: 'b', forMs: 0 },
          ],
          ours: [
            { peerEof: 'a', from: 0, to: 1000, since: 'replied' },
            { peerEof: 'b', from: 0, to: 1000, since: 'replied' },
          ],
        },
      },
    ],
  },
  {
    name: '59 ttl 99999999999 is accepted by save_endp (wraps to 1215752191) and clamped to the limit',
    ttlLimit: 2,
    steps: [...savedEndp(E, P, 'a', { ttl: '99999999999' }), { mark: 'saved' }, { peerEof: 'a', from: 1000, to: 3000, since: 'saved' }],
  },
  saveDestTtl('59 ttl 99999999999 is accepted by save_dest', '99999999999', 'stored'),
  saveDestTtl('59 ttl 4294967295 (-1) is rejected by save_dest', '4294967295', 'rejected', [BAD_SAVE_DEST]),
  saveDestTtl('59 ttl 2147483648 (INT_MIN) is rejected by save_dest', '2147483648', 'rejected', [BAD_SAVE_DEST]),
  {
    name: '59 ttl 4294967295 (-1) is rejected by save_endp',
    steps: [{ send: saveEndp('4294967295', E, P) }, { expect: status(BAD) }, { records: [BAD_SAVE_ENDP] }],
  },
  {
    name: '60 nothing is sent between a find reply and the first dummy, and one data byte with the descriptor',
    steps: [
      ...savedEndp(E, P, 'a'),
      ...savedDest(D, Q, E2),
      ...savedEndp(E2, P2, 'b'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { expectNothing: 300 },
      { send: DUMMY },
      { receiveFd: 'x' },
      { expectNothing: 200 },
      { send: DUMMY },
      ...missEndp,
      { send: findDest(D) },
      { expect: findDestReply(OK, Q, P2) },
      { expectNothing: 300 },
      { send: DUMMY },
      { receiveFd: 'y' },
      { expectNothing: 200 },
      { send: DUMMY },
      ...missDest(),
      { sameOpenFile: 'x', as: 'a' },
      { sameOpenFile: 'y', as: 'b' },
    ],
  },

  // ---------------------------------------------------------------------------------------------
  // Beyond the numbered checklist: §11's edge cases and §14's quirks.
  {
    name: 'Q3 two find_endp misses in one write: Postfix answers only the first, we answer both',
    steps: [
      { send: concat(findEndp(E), findEndp(E2)) },
      { expect: findEndpReply(FAIL) },
      {
        why: 'spec Q3: Postfix drops input it buffered ahead when it writes a reply; we serve every request',
        sides: {
          postfix: [{ expectNothing: 400 }],
          ours: [{ expect: findEndpReply(FAIL) }],
        },
      },
      ...missEndp,
    ],
  },
  {
    name: 'Q3 a save_endp pipelined behind a find_endp: Postfix drops it, we answer it',
    steps: [
      { send: concat(findEndp(E), saveEndp(2, E, P)) },
      { expect: findEndpReply(FAIL) },
      {
        why: 'spec Q3',
        sides: {
          postfix: [{ expectNothing: 400 }, ...missEndp],
          ours: [{ expect: DUMMY }, { sendFd: 'a' }, { expect: status(OK) }, ...foundEndp(E, P, 'x'), { sameOpenFile: 'x', as: 'a' }],
        },
      },
    ],
  },
  {
    name: '§11 label=L request=find_endp: two warnings for the stray attribute, then a BAD find_endp',
    steps: [
      { send: attrs(['label', 'L'], ['request', 'find_endp']) },
      { expect: findEndpReply(BAD) },
      { records: [unexpected('label', 'request'), unexpected('L', 'request'), missing('label'), BAD_FIND_ENDP] },
      ...missEndp,
    ],
  },
  {
    name: '§11 a lone NUL gets no reply and "missing attribute request"',
    steps: [{ send: Buffer.of(0) }, { expectNothing: 300 }, { records: [missing('request')] }, ...missEndp],
  },
  {
    name: '§11 request=foo with more attributes: status=1, the rest of the list is skipped silently',
    steps: [
      { send: attrs(['request', 'foo'], ['label', E], ['property', P]) },
      { expect: status(BAD) },
      { expectNothing: 200 },
      ...missEndp,
      { records: ['warning: unrecognized request: "foo", ignored'] },
    ],
  },
  {
    name: '§11 request names are case-sensitive: FIND_ENDP is unrecognized',
    steps: [{ send: attrs(['request', 'FIND_ENDP'], ['label', E]) }, { expect: status(BAD) }, { records: ['warning: unrecognized request: "FIND_ENDP", ignored'] }],
  },
  {
    name: '§11 a descriptor message with extra bytes: status=0, then the extra bytes are a request',
    steps: [
      { send: saveEndp(2, E, P) },
      { expect: DUMMY },
      { sendFd: 'a', data: concat(Buffer.of(0), findEndp(E2)) },
      { expect: status(OK) },
      { expect: findEndpReply(FAIL) },
      ...foundEndp(E, P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  {
    name: '§11 save_dest with ttl=0x10 is malformed',
    steps: [{ send: saveDest('0x10', D, Q, E) }, { expect: status(BAD) }, { records: [malformed('0x10'), BAD_SAVE_DEST] }],
  },
  {
    name: '§11 save_dest with ttl=0 is rejected',
    steps: [{ send: saveDest(0, D, Q, E) }, { expect: status(BAD) }, { records: [BAD_SAVE_DEST] }],
  },
  {
    name: '§11 save_dest without the endpoint label is rejected',
    steps: [
      { send: attrs(['request', 'save_dest'], ['ttl', '2'], ['label', D], ['property', Q]) },
      { expect: status(BAD) },
      ...savedEndp(E, P, 'a'),
      ...missDest(),
      { records: [missing('label'), BAD_SAVE_DEST] },
    ],
  },
  saveDestTtl('Q10 ttl 4294967297 wraps to 1 and is accepted', '4294967297', 'accepted'),
  saveDestTtl('Q10 ttl -4294967295 wraps to 1 and is accepted', '-4294967295', 'accepted'),
  saveDestTtl('Q10 ttl 4294967296 wraps to 0 and is rejected', '4294967296', 'rejected', [BAD_SAVE_DEST]),
  saveDestTtl('Q10 ttl 18446744073709551615 is rejected', '18446744073709551615', 'rejected', [BAD_SAVE_DEST]),
  saveDestTtl('Q10 ttl 99999999999999999999999 saturates and is rejected', '99999999999999999999999', 'rejected', [BAD_SAVE_DEST]),
  saveDestTtl('Q10 ttl "\\t\\n\\v\\f\\r 7" (any C white space, then digits) is accepted', '\t\n\x0b\x0c\r 7', 'stored'),
  saveDestTtl('Q10 ttl "007" is accepted', '007', 'stored'),
  saveDestTtl('Q10 ttl -18446744073709551615 wraps to 1 and is accepted', '-18446744073709551615', 'accepted'),
  saveDestTtl('Q10 ttl -0 is rejected', '-0', 'rejected', [BAD_SAVE_DEST]),
  saveDestTtl('Q10 ttl "- 5" is malformed', '- 5', 'rejected', [malformed('- 5'), BAD_SAVE_DEST]),
  saveDestTtl('Q10 ttl "+-5" is malformed', '+-5', 'rejected', [malformed('+-5'), BAD_SAVE_DEST]),
  saveDestTtl('Q10 ttl "5\\n" is malformed', '5\n', 'rejected', [malformed('5?'), BAD_SAVE_DEST]),
  saveDestTtl('§1.3 a malformed ttl is quoted up to 100 bytes', 'x'.repeat(150), 'rejected', [malformed('x'.repeat(100)), BAD_SAVE_DEST]),
  {
    name: '§3.1 a second request attribute where a parameter belongs is unexpected',
    steps: [
      { send: attrs(['request', 'find_endp'], ['request', 'find_endp'], ['label', E]) },
      { expect: findEndpReply(BAD) },
      { records: [unexpected('request', 'label'), BAD_FIND_ENDP] },
      ...missEndp,
    ],
  },
  {
    name: '§3.4 both dummies sent in one write before the descriptor arrives',
    steps: [
      ...savedEndp(E, P, 'a'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { send: concat(DUMMY, DUMMY) },
      { receiveFd: 'x' },
      ...missEndp,
      { sameOpenFile: 'x', as: 'a' },
      { records: [] },
    ],
  },
  {
    name: '§3.4 the first dummy\'s value is not checked',
    steps: [
      ...savedEndp(E, P, 'a'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { send: attrs(['dummy', 'anything']) },
      { receiveFd: 'x' },
      { send: attrs(['dummy', 'else']) },
      ...missEndp,
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  {
    // attr_scan0 warns about `extra` and still succeeds, but leaves its value unread: the trailing
    // dummy scan then reads `1` as a name and fails, and the rest is parsed as (bad) requests.
    name: '§3.4 an extra attribute after the first dummy: the descriptor is sent, the trailing dummy scan fails',
    steps: [
      ...savedEndp(E, P, 'a'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { send: attrs(['dummy', ''], ['extra', '1']) },
      { receiveFd: 'x' },
      { send: DUMMY },
      { expectNothing: 200 },
      {
        records: [
          unexpected('extra', '(list terminator)'),
          unexpected('1', 'dummy'),
          CANNOT_SEND_ENDP,
          missing('request'),
          unexpected('dummy', 'request'),
          missing('request'),
          missing('request'),
        ],
      },
      ...missEndp,
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  {
    name: '§3.4 a request instead of the first dummy: "cannot send", the connection is lost, input resynchronises',
    steps: [
      ...savedEndp(E, P, 'a'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { mark: 'sent' },
      { send: findEndp(E2) },
      { expectNothing: 300 },
      { peerEof: 'a', from: 0, to: 1000, since: 'sent' },
      {
        records: [
          unexpected('request', 'dummy'),
          CANNOT_SEND_ENDP,
          unexpected('find_endp', 'request'),
          unexpected('label', 'request'),
          unexpected(E2.replace(/\n/g, '?'), 'request'),
          missing('request'),
        ],
      },
      ...missEndp,
    ],
  },
  {
    name: '§9.1 non-printable bytes of a logged request name become "?" (Postfix passes a truncated UTF-8 sequence through, we do not)',
    steps: [
      { send: attrs(['request', 'a\nb\x01c\xffd\xc3\xa9e\xe2\x82f']) },
      { expect: status(BAD) },
      {
        why: 'Postfix keeps a lead byte followed by any continuation bytes (printable.c does not check the length), so the truncated sequence \\xe2\\x82 reaches its log; our printable() writes "?" for every invalid UTF-8 sequence',
        sides: {
          postfix: [{ records: ['warning: unrecognized request: "a?b?c?d\u00e9e\\xe2\\x82f", ignored'] }],
          ours: [{ records: ['warning: unrecognized request: "a?b?c?d\u00e9e?f", ignored'] }],
        },
      },
    ],
  },
  {
    name: '§3.3 empty label and property are valid',
    steps: [...savedEndp('', '', 'a'), ...foundEndp('', '', 'x'), { sameOpenFile: 'x', as: 'a' }, ...missEndpOn('c', '')],
  },
  {
    name: '§10 a client stalled in mid-request: Postfix serves nobody else meanwhile, we serve the others',
    steps: [
      { connect: 'c2' },
      { send: 'request\x00find_endp\x00lab' },
      { expectNothing: 150 },
      {
        why: 'spec §7.6/§13: Postfix reads a request with blocking I/O; our loop is non-blocking per connection',
        sides: {
          postfix: [{ send: findEndp(E2), on: 'c2' }, { expectNothing: 400, on: 'c2' }],
          ours: [{ send: findEndp(E2), on: 'c2' }, { expect: findEndpReply(FAIL), on: 'c2' }],
        },
      },
      { send: concat('el\x00', E, '\x00\x00') },
      { expect: findEndpReply(FAIL) },
      {
        why: 'the stalled request completed: Postfix now serves c2 too',
        sides: { postfix: [{ expect: findEndpReply(FAIL), on: 'c2' }], ours: [] },
      },
    ],
  },
  {
    name: '§1.4 a request split into 1-byte writes is served like one written whole',
    steps: [
      { send: saveEndp(2, E, P), pieces: saveEndp(2, E, P).length },
      { expect: DUMMY },
      { sendFd: 'a' },
      { expect: status(OK) },
      { send: findEndp(E), pieces: 7 },
      { expect: findEndpReply(OK, P) },
      { send: DUMMY, pieces: 8 },
      { receiveFd: 'x' },
      { send: DUMMY, pieces: 3 },
      ...missEndp,
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  {
    name: '§2.4 a client that half-closes after its request still gets the reply, then is disconnected',
    steps: [{ send: findEndp(E) }, { shutdown: 'c' }, { expect: findEndpReply(FAIL) }, { closedWithin: 1000 }],
  },
  // In the four cases below the client pauses between its data and its close, so that the server
  // reads them apart: data and end-of-file arriving together are disconnects.test.ts's subject.
  {
    name: '§10 end-of-input after the request name: no reply, "bad or missing request parameter"',
    steps: [...savedEndp(E, P, 'a'), { send: 'request\x00find_endp\x00' }, { expectNothing: 50 }, { close: 'c' }, { records: [BAD_FIND_ENDP] }, { connect: 'c2' }, ...foundEndp(E, P, 'x', 'c2')],
  },
  {
    name: '§10 end-of-input where a value should start: "premature end-of-input ... attribute value"',
    steps: [
      { send: 'request\x00save_endp\x00ttl\x002\x00label\x00' },
      { expectNothing: 50 }, { close: 'c' },
      { records: ['warning: premature end-of-input on scache socket while reading input attribute value', BAD_SAVE_ENDP] },
    ],
  },
  {
    name: '§10 end-of-input inside a value: "unexpected end-of-input ... attribute value"',
    steps: [
      { send: 'request\x00save_endp\x00ttl\x002\x00label\x00smtp\n19' },
      { expectNothing: 50 }, { close: 'c' },
      { records: ['warning: unexpected end-of-input from scache socket while reading input attribute value', BAD_SAVE_ENDP] },
    ],
  },
  {
    name: '§10 end-of-input inside a name: "unexpected end-of-input ... attribute name"',
    steps: [
      { send: 'request\x00find_dest\x00lab' },
      { expectNothing: 50 }, { close: 'c' },
      { records: ['warning: unexpected end-of-input from scache socket while reading input attribute name', BAD_FIND_DEST] },
    ],
  },
  {
    name: 'Q12 a 70000-byte property: Postfix takes it, we refuse strings over 64 KiB and disconnect',
    steps: [
      { send: saveEndp(2, E, 'p'.repeat(70_000)) },
      {
        why: 'spec Q12 / §1.5: Postfix reads strings of any length (until memory runs out); we bound them',
        sides: {
          postfix: [{ expect: DUMMY }, { sendFd: 'a' }, { expect: status(OK) }, { records: [] }],
          ours: [
            { closedWithin: 1000 },
            { records: ['warning: attribute name or value longer than 65536 bytes from scache socket; closing the connection'] },
          ],
        },
      },
    ],
  },
  {
    // Found live while writing these tests: Postfix's announcement write fails (EPIPE), which
    // leaves its stream unreadable, while the socket still holds unread data: every read event then
    // runs the service, which reads nothing, and the connection is never closed (FIONREAD > 0).
    name: 'Q1 a client gone (data unread) before the announcement: Postfix spins for good, we close it',
    queuedBeforeStart: 'request\x00save_endp\x00ttl\x002\x00label\x00smtp\n19',
    steps: [
      ...missEndp,
      {
        why: 'a new variant of spec Q1 (busy loop on a stream in error state); we close the connection instead',
        sides: {
          postfix: [{ spinning: true, forMs: 300 }],
          ours: [{ connectedClients: 1 }],
        },
      },
      { records: [] },
    ],
  },
  {
    name: '§3.3 no descriptor within ipc_timeout (1 s): status=2, "Connection timed out", the client is still served',
    ipcTimeout: 1,
    steps: [
      { send: saveEndp(2, E, P) },
      { expect: DUMMY },
      { mark: 'dummy' },
      { expectNothing: 700 },
      { expect: status(FAIL) },
      { records: ['warning: scache_save_endp_service: unable to receive file descriptor: Connection timed out'] },
      ...missEndp,
      ...savedEndp(E, P, 'a'),
      ...foundEndp(E, P, 'x'),
      { sameOpenFile: 'x', as: 'a' },
    ],
  },
  {
    name: 'Q1 no dummy within ipc_timeout (1 s) after a find hit: "cannot send", connection lost; we also close the client',
    ipcTimeout: 1,
    steps: [
      ...savedEndp(E, P, 'a'),
      { send: findEndp(E) },
      { expect: findEndpReply(OK, P) },
      { mark: 'replied' },
      { peerEof: 'a', from: 700, to: 2500, since: 'replied' },
      { records: [CANNOT_SEND_ENDP] },
      {
        why: 'spec Q1: Postfix keeps the timed-out stream open (unusable); we close it',
        sides: { postfix: [{ expectNothing: 200 }], ours: [{ closedWithin: 500 }] },
      },
      { connect: 'c2' },
      ...missEndpOn('c2'),
    ],
  },
  {
    name: 'Q1 a name cut short by ipc_timeout (1 s): warnings, no reply; more input then makes Postfix spin, we closed',
    ipcTimeout: 1,
    steps: [
      { send: 'request\x00find_endp\x00lab' },
      { expectNothing: 1800 },
      { records: ['warning: unexpected end-of-input from scache socket while reading input attribute name', BAD_FIND_ENDP] },
      {
        why: 'spec Q1: the timed-out Postfix stream reads nothing more, so unread input makes its loop spin',
        sides: {
          postfix: [{ send: concat('el\x00', E, '\x00\x00') }, { spinning: true, forMs: 300 }],
          ours: [{ closedWithin: 500 }, { connectedClients: 0 }],
        },
      },
    ],
  },
  {
    name: 'Q1 a request stalled past ipc_timeout (1 s): "bad or missing", no reply; we close the connection',
    ipcTimeout: 1,
    steps: [
      { send: attrs(['request', 'find_endp']).subarray(0, -1) },
      { expectNothing: 2500 },
      { records: [BAD_FIND_ENDP] },
      {
        why: 'spec Q1: Postfix keeps a timed-out stream (and may spin on it); we close it',
        sides: {
          postfix: [{ connect: 'c2' }, ...missEndpOn('c2')],
          ours: [{ closedWithin: 500 }, { connect: 'c2' }, ...missEndpOn('c2')],
        },
      },
    ],
  },
];
