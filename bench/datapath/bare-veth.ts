/**
 * The ceiling every pod → pod figure is held against: two namespaces joined
 * by one veth pair, no node in between, no Palisade. Named `pl-<tag>-bare-…`
 * so a lab's cleanup by prefix takes it too.
 */
import { createNetns, deleteNetns, ipBatch } from '../../src/kernel/index.ts';

export interface BareVeth {
  client: string;
  server: string;
  serverIp: string;
  destroy(): Promise<void>;
}

export async function createBareVeth(prefix: string): Promise<BareVeth> {
  const client = `${prefix}bare-a`;
  const server = `${prefix}bare-b`;
  const destroy = async (): Promise<void> => {
    await deleteNetns(client).catch(() => {});
    await deleteNetns(server).catch(() => {});
  };
  try {
    await createNetns(client);
    await createNetns(server);
    await ipBatch([`link add eth0 type veth peer name eth0 netns ${server}`, 'addr add 10.99.0.1/24 dev eth0', 'link set eth0 up', 'link set lo up'], client);
    await ipBatch(['addr add 10.99.0.2/24 dev eth0', 'link set eth0 up', 'link set lo up'], server);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { client, server, serverIp: '10.99.0.2', destroy };
}
