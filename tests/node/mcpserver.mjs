// An MCP server for tokengate's end-to-end tests, built with the official TypeScript SDK: stateless
// Streamable HTTP at /mcp on 127.0.0.1 (the port it prints as its first line), one tool, whoami,
// which answers with the X-User header tokengate's bearer_auth set. It trusts that header because
// only bearer_auth can reach it (the test listens on loopback and proxies to it).
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

function newServer(user) {
  const server = new McpServer({ name: 'tokengate-test-server', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who the caller signed in as' }, async () => ({
    content: [{ type: 'text', text: user ?? '' }],
  }));
  return server;
}

const listener = http.createServer(async (req, res) => {
  if (!req.url.startsWith('/mcp')) {
    res.writeHead(404).end();
    return;
  }
  // Stateless: a server and a transport per request, as the SDK's stateless example does.
  const server = newServer(req.headers['x-user']);
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on('close', () => { transport.close(); server.close(); });
  await server.connect(transport);
  await transport.handleRequest(req, res);
});
listener.listen(0, '127.0.0.1', () => console.log(listener.address().port));
