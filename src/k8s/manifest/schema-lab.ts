/** lab.palisade.dev/v1 kinds: ExternalHost, a host outside the cluster that the lab builds. */
import * as z from 'zod';
import type { ExternalHost } from '../objects.ts';
import { dns1123LabelError } from './checks-names.ts';
import { matchNameError } from './checks-dns.ts';
import { portNumberField } from './checks-ports.ts';
import { objectMeta } from './schema-meta.ts';
import { refuseNamespace } from './schema-core.ts';
import { apiVersionField, checkedString, STATUS_REFUSED, strictObject, withChecks } from './schema-kit.ts';

const dnsName = checkedString(matchNameError);

export const externalHostSchema: z.ZodType<ExternalHost> = withChecks(
  strictObject(
    {
      apiVersion: apiVersionField('lab.palisade.dev/v1', 'ExternalHost'),
      kind: z.literal('ExternalHost'),
      // The name becomes part of a network namespace name: a DNS label.
      metadata: objectMeta(dns1123LabelError),
      spec: strictObject(
        {
          names: z.array(dnsName).min(1, { error: 'an ExternalHost needs at least one DNS name in spec.names' }),
          ports: z.array(portNumberField(1)).optional(),
        },
        { missing: 'required field is missing: an ExternalHost needs spec.names' },
      ),
    },
    { refused: { status: STATUS_REFUSED } },
  ),
  (h, report) => refuseNamespace('ExternalHost', h, report),
);
