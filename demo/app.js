// Demo page logic: shows which site answered and sends messages to the WebSocket echo.
const siteLabel = document.getElementById('site');
const hostLabel = document.getElementById('host');
const apiBox = document.getElementById('api');
const echoLog = document.getElementById('echo-log');

hostLabel.textContent = location.host;

fetch('/api/')
  .then((response) => response.json())
  .then((info) => {
    siteLabel.textContent = info.site;
    apiBox.textContent = JSON.stringify(info, null, 2);
  })
  .catch((error) => {
    apiBox.textContent = `request failed: ${error}`;
  });

let socket;

function openSocket() {
  socket = new WebSocket(`wss://${location.host}/api/ws`);
  socket.addEventListener('message', (event) => log(`echo: ${event.data}`));
  socket.addEventListener('close', (event) => log(`closed (code ${event.code})`));
  return new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', reject, { once: true });
  });
}

function log(line) {
  echoLog.textContent += `${line}\n`;
}

document.getElementById('echo-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = document.getElementById('echo-input').value;
  if (socket === undefined || socket.readyState !== WebSocket.OPEN) await openSocket();
  socket.send(text);
  log(`sent: ${text}`);
});
