// Throwaway PKI for one control-plane run, made with openssl: a CA, the API
// server's serving cert, client certs (admin and any extra identity a test
// wants, so the audit log attributes each write) and the service-account key.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

export interface ClientCert {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createPki(dir: string): Pki {
  const p = (f: string) => path.join(dir, f);
  openssl(['genrsa', '-out', 'ca.key', '2048'], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-nodes',
      '-key',
      'ca.key',
      '-subj',
      '/CN=singleton-test-ca',
      '-days',
      '30',
      '-out',
      'ca.crt',
    ],
    dir,
  );

  writeFileSync(
    p('server.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
      '',
    ].join('\n'),
  );
  openssl(['genrsa', '-out', 'server.key', '2048'], dir);
  openssl(['req', '-new', '-key', 'server.key', '-subj', '/CN=kube-apiserver', '-out', 'server.csr'], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      'server.ext',
      '-out',
      'server.crt',
    ],
    dir,
  );

  openssl(['genrsa', '-out', 'sa.key', '2048'], dir);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], dir);
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    serviceAccountKey: p('sa.key'),
    serviceAccountPub: p('sa.pub'),
  };
}

/** Issues a client certificate: CN is the user name, each O a group. */
export function issueClientCert(pki: Pki, user: string, groups: string[] = []): ClientCert {
  const safe = user.replace(/[^a-zA-Z0-9.-]/g, '_');
  const subject = `/CN=${user}${groups.map((g) => `/O=${g}`).join('')}`;
  const ext = path.join(pki.dir, `client-${safe}.ext`);
  writeFileSync(
    ext,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  openssl(['genrsa', '-out', `client-${safe}.key`, '2048'], pki.dir);
  openssl(['req', '-new', '-key', `client-${safe}.key`, '-subj', subject, '-out', `client-${safe}.csr`], pki.dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `client-${safe}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      ext,
      '-out',
      `client-${safe}.crt`,
    ],
    pki.dir,
  );
  return { cert: path.join(pki.dir, `client-${safe}.crt`), key: path.join(pki.dir, `client-${safe}.key`) };
}

/** Issues a serving certificate (e.g. a kubelet's) for the given IP addresses and DNS names. */
export function issueServingCert(pki: Pki, name: string, ips: string[], dnsNames: string[] = []): ClientCert {
  const safe = name.replace(/[^a-zA-Z0-9.-]/g, '_');
  const ext = path.join(pki.dir, `serving-${safe}.ext`);
  const san = [...ips.map((ip) => `IP:${ip}`), ...dnsNames.map((d) => `DNS:${d}`)].join(',');
  writeFileSync(
    ext,
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`,
  );
  openssl(['genrsa', '-out', `serving-${safe}.key`, '2048'], pki.dir);
  openssl(
    ['req', '-new', '-key', `serving-${safe}.key`, '-subj', `/CN=${name}`, '-out', `serving-${safe}.csr`],
    pki.dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `serving-${safe}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      ext,
      '-out',
      `serving-${safe}.crt`,
    ],
    pki.dir,
  );
  return { cert: path.join(pki.dir, `serving-${safe}.crt`), key: path.join(pki.dir, `serving-${safe}.key`) };
}

export interface KubeconfigUser {
  name: string;
  clientCert?: ClientCert;
  token?: string;
}

/** Writes a kubeconfig with embedded credentials, so it can be copied anywhere. */
export function writeKubeconfig(file: string, server: string, caCert: string, user: KubeconfigUser): void {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  const userFields = user.clientCert
    ? [`    client-certificate-data: ${b64(user.clientCert.cert)}`, `    client-key-data: ${b64(user.clientCert.key)}`]
    : [`    token: ${user.token ?? ''}`];
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: local',
      '  cluster:',
      `    server: ${server}`,
      `    certificate-authority-data: ${b64(caCert)}`,
      'users:',
      `- name: ${user.name}`,
      '  user:',
      ...userFields,
      'contexts:',
      '- name: local',
      '  context:',
      '    cluster: local',
      `    user: ${user.name}`,
      'current-context: local',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
}
