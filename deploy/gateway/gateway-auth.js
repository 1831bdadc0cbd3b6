// njs for the login check (nginx.conf, /_gateway/auth). Two jobs nginx alone cannot do:
//  - cacheKey: the auth cache is keyed by an HMAC of the Authorization header, never the header
//    itself (nginx writes the key into each cache file, which would put credentials on the tmpfs).
//    The HMAC key is random per container start and lives only in nginx's shared memory.
//  - checkAuthorization: the header the credential check sees. A name that is in no role file is
//    replaced by STAND_IN_USER, whose bcrypt hash the check then verifies (and rejects), so unknown
//    names cost one bcrypt like known ones and timing does not tell which names exist.
import nodeCrypto from 'crypto';
import fs from 'fs';

const USERS_DIR = '/var/lib/gateway/users';
const ROLE_FILES = ['editor.htpasswd', 'viewer.htpasswd'];
// Upper case: never a valid user name (gateway-lib.sh NAME_RE), so it cannot collide with a user.
const STAND_IN_USER = 'Gateway-Stand-In';
const NAME_RE = /^[a-z0-9._-]{1,64}$/;

function secret() {
    const zone = ngx.shared.gateway_secret;
    // add() stores only if absent: every worker (and every reload) uses the first key made.
    zone.add('hmac', Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex'));
    return zone.get('hmac');
}

function cacheKey(r) {
    return nodeCrypto.createHmac('sha256', secret()).update(r.headersIn.Authorization || '').digest('hex');
}

function knownUser(name) {
    return ROLE_FILES.some((file) => {
        let text;
        try {
            text = fs.readFileSync(USERS_DIR + '/' + file, 'utf8');
        } catch (e) {
            return false;  // a role file that does not exist yet holds nobody
        }
        return text.split('\n').some((line) => line.startsWith(name + ':'));
    });
}

// The Authorization header re-encoded by us (so nginx decodes exactly the name judged here), with
// an unknown name replaced by STAND_IN_USER; "" (no credentials: 401 at once) if it is not Basic
// credentials with a name.
function checkAuthorization(r) {
    const match = /^Basic[ \t]+([A-Za-z0-9+/=_-]+)[ \t]*$/i.exec(r.headersIn.Authorization || '');
    if (!match) {
        return '';
    }
    const decoded = Buffer.from(match[1], 'base64');
    const colon = decoded.indexOf(0x3a);
    if (colon < 1) {
        return '';
    }
    const name = decoded.subarray(0, colon).toString('utf8');
    const password = decoded.subarray(colon + 1);
    const checked = NAME_RE.test(name) && knownUser(name) ? name : STAND_IN_USER;
    return 'Basic ' + Buffer.concat([Buffer.from(checked + ':'), password]).toString('base64');
}

export default { cacheKey, checkAuthorization };
